from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.errors import MeshError
from meshtui.cli.connect import open_controller

NAME = "apply"
HELP = "apply manifests from files, directories or stdin (-f -)"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", action="append", required=True, metavar="FILE",
                        help="a manifest file, a directory of them, or - for stdin (repeatable)")
    parser.add_argument("--cluster", help="the cluster of namespaced documents")
    parser.add_argument("-n", "--namespace", help="the namespace of documents that name none")


def read_sources(paths: list[str]) -> list[tuple[str, str]]:
    """(source name, text) of every input, read before anything is applied."""
    out: list[tuple[str, str]] = []
    for name in paths:
        if name == "-":
            out.append(("<stdin>", sys.stdin.read()))
            continue
        path = Path(name)
        try:
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES)
                out += [(str(p), p.read_text()) for p in files]
            else:
                out.append((name, path.read_text()))
        except (OSError, UnicodeDecodeError) as e:
            raise MeshError(f"cannot read {name}: {getattr(e, 'strerror', None) or e}") from None
    return out


async def run(args: argparse.Namespace) -> int:
    sources = read_sources(args.filename)
    async with open_controller(args) as controller:
        for source, text in sources:
            objs = await controller.apply(text, cluster=args.cluster, namespace=args.namespace, source=source)
            for obj in objs:
                print(f"{obj['kind'].lower()}/{obj['metadata']['name']} configured")
    return 0
