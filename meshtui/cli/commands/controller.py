from __future__ import annotations

import argparse
import ssl

from controller.api import parse_listen
from controller.errors import MeshError
from controller.headless import configure_logging, serve_until_signalled, server_tls
from meshtui.cli.connect import state_dir_of
from meshtui.cli.errors import UsageError

NAME = "controller"
HELP = "run the controller headless: API (and data plane), logs on stderr, graceful stop on SIGTERM"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="where the API listens (default 127.0.0.1:0, a free port, recorded in the state dir)")
    parser.add_argument("--log-format", choices=("plain", "json"), default="plain")
    parser.add_argument("--tls-cert", metavar="FILE", help="serve the API over TLS with this certificate (PEM)")
    parser.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    k = parser.add_argument_group("leader election (Kubernetes-backed clusters)")
    k.add_argument("--leader-elect", action="store_true",
                   help="write ServiceImports and statuses only while holding a coordination.k8s.io Lease")
    k.add_argument("--lease-namespace", default="meshtui-system", metavar="NS")
    k.add_argument("--lease-name", default="meshtui-controller", metavar="NAME")
    k.add_argument("--kubeconfig", metavar="FILE",
                   help="kubeconfig of the cluster holding the Lease (default: the pod's service account in a pod, else $KUBECONFIG)")
    k.add_argument("--context", metavar="CTX", help="context of that kubeconfig")
    k.add_argument("--lease-duration", type=float, default=10.0, metavar="SECONDS")
    k.add_argument("--renew-period", type=float, default=2.0, metavar="SECONDS")


async def run(args: argparse.Namespace) -> int:
    try:
        parse_listen(args.api)
    except ValueError as e:
        raise UsageError(f"--api: {e}") from None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    try:
        tls = server_tls(args.tls_cert, args.tls_key) if args.tls_cert else None
    except (OSError, ssl.SSLError) as e:
        raise MeshError(f"cannot load the TLS certificate {args.tls_cert} / key {args.tls_key}: {e}") from None
    leader = None
    if args.leader_elect:
        from controller.leader import LeaderOptions

        try:
            leader = LeaderOptions(namespace=args.lease_namespace, name=args.lease_name, kubeconfig=args.kubeconfig,
                                   context=args.context, lease_duration=args.lease_duration, renew_period=args.renew_period)
        except ValueError as e:
            raise UsageError(f"--lease-duration/--renew-period: {e}") from None
    configure_logging(args.log_format)
    await serve_until_signalled(state_dir_of(args), api=args.api, tls=tls, leader=leader)
    return 0
