"""The Kubernetes resource types meshtui reads and writes in a member cluster."""

from __future__ import annotations

import re
from dataclasses import dataclass

FSM_GROUP = "multicluster.flomesh.io"
FLOMESH_GROUP = "flomesh.io"
MCS_GROUP = "multicluster.x-k8s.io"
SMI_GROUP = "split.smi-spec.io"
MESHTUI_GROUP = "meshtui.io"


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def builtin(self) -> bool:
        return self.group in BUILTIN_GROUPS

    @property
    def snake(self) -> str:
        """The kind as the official client's method names spell it: EndpointSlice -> endpoint_slice."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.kind).lower()

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


BUILTIN_GROUPS = ("", "discovery.k8s.io", "coordination.k8s.io")

NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False)
SERVICES = ResourceType("", "v1", "services", "Service")
ENDPOINTS = ResourceType("", "v1", "endpoints", "Endpoints")
ENDPOINT_SLICES = ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease")


def _crd(group: str, plural: str, kind: str, namespaced: bool = True) -> ResourceType:
    return ResourceType(group, "v1alpha1", plural, kind, namespaced)


SERVICE_EXPORTS = {g: _crd(g, "serviceexports", "ServiceExport") for g in (FSM_GROUP, FLOMESH_GROUP, MCS_GROUP)}
SERVICE_IMPORTS = {g: _crd(g, "serviceimports", "ServiceImport") for g in (FSM_GROUP, FLOMESH_GROUP, MCS_GROUP)}
GLOBAL_TRAFFIC_POLICIES = {
    g: _crd(g, "globaltrafficpolicies", "GlobalTrafficPolicy") for g in (FSM_GROUP, FLOMESH_GROUP)
}
TRAFFIC_SPLITS = _crd(SMI_GROUP, "trafficsplits", "TrafficSplit")
LINKS = _crd(MESHTUI_GROUP, "links", "Link", namespaced=False)

# What the controller follows in every member cluster. When one core kind is served by several
# groups (ServiceExport), the earlier group's object wins if both exist under one name.
WATCHED: tuple[ResourceType, ...] = (
    NAMESPACES,
    SERVICES,
    ENDPOINT_SLICES,
    *SERVICE_EXPORTS.values(),
    *GLOBAL_TRAFFIC_POLICIES.values(),
    TRAFFIC_SPLITS,
    LINKS,
)
# Where meshtui writes the ServiceImports it derives (FSM's shape: ports with endpoints).
IMPORTS = SERVICE_IMPORTS[FSM_GROUP]
# Objects of these types carry a status meshtui derives and writes back (conditions).
WITH_STATUS: tuple[ResourceType, ...] = (*SERVICE_EXPORTS.values(), *GLOBAL_TRAFFIC_POLICIES.values())
# What a user may write through meshtui into a Kubernetes-backed cluster: the watched kinds that
# users own (not Namespaces, which meshtui creates on demand, nor the derived ServiceImports).
WRITABLE: tuple[ResourceType, ...] = tuple(r for r in WATCHED if r is not NAMESPACES)

_ALL = (NAMESPACES, SERVICES, ENDPOINTS, ENDPOINT_SLICES, LEASES, *SERVICE_EXPORTS.values(),
        *SERVICE_IMPORTS.values(), *GLOBAL_TRAFFIC_POLICIES.values(), TRAFFIC_SPLITS, LINKS)  # fmt: skip
_BY_API_VERSION_KIND = {(r.api_version, r.kind): r for r in _ALL}
# The custom resources meshtui reads or writes: `meshtui install` defines each as a CRD.
CUSTOM_RESOURCES: tuple[ResourceType, ...] = tuple(r for r in _ALL if not r.builtin)


def resource_for(api_version: str, kind: str) -> ResourceType:
    """The resource type of a manifest's apiVersion/kind; KeyError names them when unknown."""
    try:
        return _BY_API_VERSION_KIND[(api_version, kind)]
    except KeyError:
        raise KeyError(f"{kind} in {api_version} is not a resource meshtui keeps in Kubernetes") from None
