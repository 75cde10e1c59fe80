from __future__ import annotations

import argparse

from controller.install import DEFAULT_IMAGE, InstallOptions, current_context, render
from controller.install.crds import crd_groups
from meshtui.cli.errors import UsageError

NAME = "install"
HELP = "print CRDs, RBAC and the controller and gateway manifests for a Kubernetes cluster (pipe to kubectl apply -f -)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--context", metavar="CTX",
                        help="the kubeconfig context these manifests are for (default: the current context); "
                             "it names the cluster unless --cluster does")
    parser.add_argument("--cluster", metavar="NAME", help="the cluster's name in the federation (its Cluster resource)")
    parser.add_argument("--namespace", default="meshtui-system", metavar="NS", help="where the controller and gateway run")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="the meshtui image (default: %(default)s)")
    parser.add_argument("--controller-replicas", type=int, default=2, metavar="N", help="one leads, the others stand by")
    parser.add_argument("--gateway-replicas", type=int, default=2, metavar="N")
    parser.add_argument("--lease-duration", type=float, default=10.0, metavar="SECONDS",
                        help="how long a controller that stopped renewing keeps the lead")
    parser.add_argument("--gateway-service-type", default="LoadBalancer", choices=("LoadBalancer", "NodePort", "ClusterIP"))
    parser.add_argument("--skip-crds", action="append", default=[], metavar="GROUP", choices=crd_groups(),
                        help="leave out the CRDs of an API group another product already installs (repeatable)")


async def run(args: argparse.Namespace) -> int:
    cluster = args.cluster or args.context or current_context()
    if not cluster:
        raise UsageError("name the cluster: --cluster NAME or --context CTX (no current context in $KUBECONFIG)")
    try:
        options = InstallOptions(
            cluster=cluster, namespace=args.namespace, image=args.image, controller_replicas=args.controller_replicas,
            gateway_replicas=args.gateway_replicas, lease_duration=args.lease_duration,
            gateway_service_type=args.gateway_service_type, skip_crd_groups=frozenset(args.skip_crds),
        )  # fmt: skip
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(render(options), end="")
    return 0
