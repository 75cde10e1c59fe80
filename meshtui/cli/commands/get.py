from __future__ import annotations

import argparse
import sys

from controller.model import resolve_kind
from meshtui.cli import output
from meshtui.cli.connect import open_controller
from meshtui.cli.errors import UsageError

NAME = "get"
HELP = "list resources (all clusters unless --cluster)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", metavar="KIND", help="kind, plural or short name (clusters, svcexp, gtp, ...)")
    parser.add_argument("name", metavar="NAME", nargs="?")
    parser.add_argument("-n", "--namespace", help="namespace (default: default)")
    parser.add_argument("--cluster", help="one cluster only (default: every cluster, with a CLUSTER column)")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace, with a NAMESPACE column")
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="table")


async def run(args: argparse.Namespace) -> int:
    kind = resolve_kind(args.kind)
    if args.name and args.all_namespaces:
        raise UsageError("a resource cannot be retrieved by name across all namespaces")
    namespace = None if args.all_namespaces or not kind.namespaced else (args.namespace or "default")
    cluster = args.cluster if kind.namespaced else None  # federation-scoped kinds belong to no cluster
    async with open_controller(args) as controller:
        if args.name:
            objs = [await controller.get(kind.name, args.name, cluster=cluster, namespace=namespace)]
        else:
            objs = await controller.list(kind.name, cluster=cluster, namespace=namespace)
    if args.output in ("json", "yaml"):
        print(output.dump(objs[0] if args.name else output.as_list(objs), args.output))
    elif not objs:
        where = f" in {namespace} namespace" if namespace else ""
        print(f"No resources found{where}.", file=sys.stderr)
    else:
        print(output.object_table(kind.name, objs, show_cluster=kind.namespaced and cluster is None,
                                  show_namespace=kind.namespaced and namespace is None, wide=args.output == "wide"))
    return 0
