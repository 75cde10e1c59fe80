from __future__ import annotations

import argparse

from controller.model import resolve_kind
from meshtui.cli.connect import open_controller

NAME = "delete"
HELP = "delete a resource"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", metavar="KIND")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-n", "--namespace", help="namespace (default: default)")
    parser.add_argument("--cluster", help="the cluster (needed when the name exists in several)")


async def run(args: argparse.Namespace) -> int:
    kind = resolve_kind(args.kind)
    async with open_controller(args) as controller:
        obj = await controller.delete(kind.name, args.name, cluster=args.cluster, namespace=args.namespace)
    print(f"{obj['kind'].lower()}/{obj['metadata']['name']} deleted")
    return 0
