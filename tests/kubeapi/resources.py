"""The resource types the test API server serves, with what discovery says about them.

Kept apart from `controller.kube.resources` on purpose: the server is the oracle the
controller's client code is tested against, so it must not share its tables.
"""

from __future__ import annotations

from dataclasses import dataclass

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True, slots=True)
class ServedResource:
    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False
    builtin: bool = False  # built-in list items carry no apiVersion/kind, as on a real server
    delete_returns_object: bool = True  # else a Status{Success} is returned, as for most built-ins

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The name errors use: `services`, `serviceimports.multicluster.flomesh.io`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _custom(
    group: str, plural: str, kind: str, *, namespaced: bool = True, short: tuple[str, ...] = ()
) -> ServedResource:
    return ServedResource(group, "v1alpha1", plural, kind.lower(), kind, namespaced, short, status_subresource=True)


def _mesh_kinds(group: str) -> list[ServedResource]:
    return [
        _custom(group, "serviceexports", "ServiceExport", short=("svcexp",)),
        _custom(group, "serviceimports", "ServiceImport", short=("svcim",)),
        _custom(group, "globaltrafficpolicies", "GlobalTrafficPolicy", short=("gtp",)),
        _custom(group, "clusters", "Cluster", namespaced=False),
    ]


SERVED: list[ServedResource] = [
    ServedResource("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",), True, True, False),
    ServedResource("", "v1", "services", "service", "Service", True, ("svc",), True, True, True),
    ServedResource("", "v1", "endpoints", "endpoints", "Endpoints", True, ("ep",), False, True, False),
    ServedResource(
        "discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True, (), False, True, False
    ),
    ServedResource("coordination.k8s.io", "v1", "leases", "lease", "Lease", True, (), False, True, False),
    *_mesh_kinds("multicluster.flomesh.io"),
    *_mesh_kinds("flomesh.io"),
    _custom("multicluster.x-k8s.io", "serviceexports", "ServiceExport"),
    _custom("multicluster.x-k8s.io", "serviceimports", "ServiceImport"),
    _custom("split.smi-spec.io", "trafficsplits", "TrafficSplit", short=("ts",)),
    _custom("meshtui.io", "links", "Link", namespaced=False),
    _custom("meshtui.io", "workloads", "Workload", short=("wl",)),
]

BY_PATH: dict[tuple[str, str, str], ServedResource] = {(r.group, r.version, r.plural): r for r in SERVED}
NAMESPACES = BY_PATH[("", "v1", "namespaces")]


def group_versions() -> dict[str, list[str]]:
    """Group name -> its versions, for /apis (the core group excluded)."""
    out: dict[str, list[str]] = {}
    for r in SERVED:
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def resources_of(group: str, version: str) -> list[ServedResource]:
    return [r for r in SERVED if r.group == group and r.version == version]
