"""`meshtui unlink --from A --to B`: delete the Links from cluster A to cluster B."""
from __future__ import annotations

import argparse

from controller.errors import NotFound
from meshtui.cli.connect import open_controller

NAME = "unlink"
HELP = "remove the link from cluster A to cluster B"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="A")
    parser.add_argument("--to", dest="target", required=True, metavar="B")


async def run(args: argparse.Namespace) -> int:
    async with open_controller(args) as controller:
        links = [o for o in await controller.list("Link")
                 if o["spec"]["sourceCluster"] == args.source and o["spec"]["targetCluster"] == args.target]
        if not links:
            raise NotFound(f"no link from {args.source} to {args.target} (see `meshtui get links`)")
        for link in links:
            await controller.delete("Link", link["metadata"]["name"])
            print(f"link/{link['metadata']['name']} deleted")
    return 0
