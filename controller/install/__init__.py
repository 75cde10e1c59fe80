"""`meshtui install`: everything meshtui needs in one member cluster, as one YAML stream for
`kubectl apply -f -` (pure: nothing here talks to a cluster).

In order: the CRDs (crds.py), the namespace, the controller's ServiceAccount and least-privilege
RBAC (rbac.py, from controller/kube/permissions.py), the controller Deployment (headless, with
leader election through a Lease) and the gateway Deployment and Service (workloads.py).
`inject.py` is `meshtui inject`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.install.crds import crds
from controller.install.inject import package_version
from controller.install.rbac import rbac
from controller.install.workloads import controller_deployment, gateway_docs, namespace_doc

Obj = dict[str, Any]
DEFAULT_IMAGE = f"ghcr.io/meshtui/meshtui:{package_version()}"
LABELS = {"app.kubernetes.io/name": "meshtui", "app.kubernetes.io/part-of": "meshtui",
          "app.kubernetes.io/managed-by": "meshtui-install"}  # fmt: skip
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class InstallOptions:
    cluster: str  # the cluster's name in the federation (the gateway's identity)
    namespace: str = "meshtui-system"
    image: str = DEFAULT_IMAGE
    controller_replicas: int = 2
    gateway_replicas: int = 2
    lease_name: str = "meshtui-controller"
    lease_duration: float = 10.0
    gateway_service_type: str = "LoadBalancer"
    skip_crd_groups: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for what, value in (("namespace", self.namespace), ("cluster", self.cluster), ("lease name", self.lease_name)):
            if not _DNS_LABEL.match(value):
                raise ValueError(f"{what} {value!r} is not a DNS label (lower case letters, digits and '-', at most 63)")
        if self.controller_replicas < 1 or self.gateway_replicas < 1:
            raise ValueError("replicas must be at least 1")


def manifests(options: InstallOptions) -> list[Obj]:
    o = options
    return [
        *crds(o.skip_crd_groups),
        namespace_doc(o.namespace, LABELS),
        *rbac(o.namespace, o.lease_name, LABELS),
        controller_deployment(o.namespace, o.image, o.controller_replicas, o.lease_name, o.lease_duration, LABELS),
        *gateway_docs(o.namespace, o.image, o.gateway_replicas, o.cluster, o.gateway_service_type, LABELS),
    ]


def render(options: InstallOptions) -> str:
    header = (f"# meshtui {package_version()} for cluster {options.cluster}: kubectl apply -f -\n"
              f"# then: kubectl -n {options.namespace} create secret generic meshtui-federation "
              f"--from-file=federation.yaml --from-file=kubeconfig\n")  # fmt: skip
    return header + yaml.safe_dump_all(manifests(options), sort_keys=False)


def current_context(kubeconfig: str | None = None) -> str | None:
    """The current context of `kubeconfig` (else the first file of $KUBECONFIG, else
    ~/.kube/config), None when there is none to read."""
    path = kubeconfig or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or "~/.kube/config"
    try:
        doc = yaml.safe_load(Path(path).expanduser().read_text())
    except (OSError, yaml.YAMLError):
        return None
    return doc.get("current-context") or None if isinstance(doc, dict) else None
