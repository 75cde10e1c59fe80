from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.errors import MeshError
from controller.install import DEFAULT_IMAGE, current_context
from controller.install.inject import InjectOptions, inject_stream
from meshtui.cli.errors import UsageError

NAME = "inject"
HELP = "add the meshtui proxy sidecar to the workloads of a YAML stream (pipe to kubectl apply -f -)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", required=True, metavar="FILE", help="a manifest file, or - for stdin")
    parser.add_argument("--cluster", metavar="NAME",
                        help="the cluster the workloads run in (default: the current kubeconfig context)")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="the meshtui image (default: %(default)s)")


async def run(args: argparse.Namespace) -> int:
    cluster = args.cluster or current_context()
    if not cluster:
        raise UsageError("name the cluster the workloads run in: --cluster NAME (no current context in $KUBECONFIG)")
    source = "<stdin>" if args.filename == "-" else args.filename
    try:
        text = sys.stdin.read() if args.filename == "-" else Path(args.filename).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise MeshError(f"cannot read {source}: {getattr(e, 'strerror', None) or e}") from None
    out, report = inject_stream(text, InjectOptions(image=args.image, cluster=cluster), source)
    sys.stdout.write(out)
    for name in report.injected:
        print(f'{name} injected', file=sys.stderr)
    for name in report.unchanged:
        print(f'{name} already injected', file=sys.stderr)
    return 0
