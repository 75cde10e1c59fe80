"""`meshtui link --from A --to B`: cluster A uses cluster B's gateway, in one step (as
`linkerd multicluster link`): the Link holds B's gateway address, the trust anchor the link
trusts and the probe spec. `--print` prints the Link as YAML to apply elsewhere instead."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from controller.errors import NotFound
from controller.identity import read_report
from controller.links import link_manifest
from controller.links.manifest import PROBE_FAILURE_THRESHOLD, PROBE_PATH, PROBE_PERIOD_S, PROBE_TIMEOUT_S
from meshtui.cli import output
from meshtui.cli.connect import open_controller, state_dir_of

NAME = "link"
HELP = "link cluster A to cluster B's gateway (credentials, address, probes) in one step"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="A", help="the cluster that calls")
    parser.add_argument("--to", dest="target", required=True, metavar="B", help="the cluster whose gateway it calls")
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="print the Link as YAML (to apply elsewhere) instead of creating it")
    parser.add_argument("--probe-period", type=float, default=PROBE_PERIOD_S, metavar="S", help="seconds between probes")
    parser.add_argument("--probe-timeout", type=float, default=PROBE_TIMEOUT_S, metavar="S")
    parser.add_argument("--failure-threshold", type=int, default=PROBE_FAILURE_THRESHOLD, metavar="N",
                        help="consecutive failed probes before the gateway is dead")
    parser.add_argument("--probe-path", default=PROBE_PATH, metavar="PATH")


def trust_anchor(target: dict, state_dir: Path, local: bool) -> str:
    """The federation's anchor: from the state dir's authority when the controller was found
    through that state dir (`local`: authoritative, even right after a rotation), else as the
    target's runtime reports it in the Cluster's status."""
    reported = ((target.get("status") or {}).get("identity") or {}).get("trustAnchor")
    if reported and not local:
        return reported
    try:
        return read_report(state_dir).anchor.anchor_fingerprint or ""
    except NotFound as e:
        if reported:
            return reported
        raise NotFound(f"cannot link to {target['metadata']['name']}: {e.message}") from None


async def run(args: argparse.Namespace) -> int:
    async with open_controller(args) as controller:
        await controller.get("Cluster", args.source)
        target = await controller.get("Cluster", args.target)
        local = not (getattr(args, "controller", None) or os.environ.get("MESHTUI_CONTROLLER"))
        manifest = link_manifest(args.source, target, trust_anchor(target, state_dir_of(args), local),
                                 period_s=args.probe_period, timeout_s=args.probe_timeout,
                                 failure_threshold=args.failure_threshold, path=args.probe_path)
        if args.print_only:
            print(output.dump(manifest, "yaml"))
            return 0
        [link] = await controller.apply([manifest], source="meshtui link")
    spec = link["spec"]
    print(f"link/{link['metadata']['name']} created: {spec['sourceCluster']} -> {spec['targetCluster']} "
          f"via gateway {spec['gatewayAddress']}, probing {spec['probe']['path']} on port {spec['probe']['port']} "
          f"every {spec['probe']['period']:g}s")
    return 0
