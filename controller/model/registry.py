"""Which kinds exist, the API groups they accept, and every name a user may type for them."""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from . import kinds as k

FLOMESH = ("multicluster.flomesh.io/v1alpha1", "flomesh.io/v1alpha1")
MCS = ("multicluster.x-k8s.io/v1alpha1",)
OURS = ("meshtui.io/v1alpha1",)
SMI = ("split.smi-spec.io/v1alpha1", "split.smi-spec.io/v1alpha2", "split.smi-spec.io/v1alpha3", "split.smi-spec.io/v1alpha4")


class EndpointsBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    subsets: list[k.EndpointSubset] = Field(default_factory=list)


class EndpointSliceBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    addressType: str = "IPv4"
    endpoints: list[k.SliceEndpoint] = Field(default_factory=list)
    ports: list[k.EndpointPort] = Field(default_factory=list)


@dataclass(frozen=True)
class Kind:
    name: str  # CamelCase, as in manifests
    plural: str
    api_versions: tuple[str, ...]
    namespaced: bool
    spec: type[BaseModel] | None  # model of `spec`; None when the body is top-level (Endpoints)
    body: type[BaseModel] | None = None  # model of the top-level body when there is no spec
    short_names: tuple[str, ...] = ()
    derived: bool = False  # written by the controller only
    aliases: tuple[str, ...] = field(default=())

    @property
    def default_api_version(self) -> str:
        return self.api_versions[0]

    def names(self) -> set[str]:
        base = {self.name.lower(), self.plural, *self.short_names, *self.aliases}
        groups = {v.split("/")[0] for v in self.api_versions if "/" in v}
        return base | {f"{n}.{g}" for n in (self.name.lower(), self.plural) for g in groups}


KINDS: tuple[Kind, ...] = (
    Kind("Cluster", "clusters", FLOMESH + OURS, False, k.ClusterSpec, short_names=("cl",)),
    Kind("ServiceExport", "serviceexports", FLOMESH + MCS + OURS, True, k.ServiceExportSpec,
         short_names=("svcexp", "svcexport", "export", "exports", "sexp")),
    Kind("ServiceImport", "serviceimports", FLOMESH + MCS + OURS, True, k.ServiceImportSpec,
         short_names=("svcimp", "svcimport", "import", "imports", "simp"), derived=True),
    Kind("GlobalTrafficPolicy", "globaltrafficpolicies", FLOMESH + OURS, True, k.GlobalTrafficPolicySpec,
         short_names=("gtp", "gtps", "policy", "policies")),
    Kind("Service", "services", ("v1",), True, k.ServiceSpec, short_names=("svc",)),
    Kind("Endpoints", "endpoints", ("v1",), True, None, body=EndpointsBody, short_names=("ep",)),
    Kind("EndpointSlice", "endpointslices", ("discovery.k8s.io/v1",), True, None, body=EndpointSliceBody,
         short_names=("eps", "slice", "slices")),
    Kind("TrafficSplit", "trafficsplits", SMI, True, k.TrafficSplitSpec, short_names=("ts", "split", "splits")),
    Kind("Workload", "workloads", OURS, True, k.WorkloadSpec, short_names=("wl", "deploy", "deployments")),
    Kind("Link", "links", OURS, False, k.LinkSpec, short_names=("ln",)),
    Kind("ExternalService", "externalservices", OURS, True, k.ExternalServiceSpec, short_names=("extsvc", "external")),
)

BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
_LOOKUP: dict[str, Kind] = {}
for _kind in KINDS:
    for _n in _kind.names():
        _LOOKUP[_n] = _kind


def lookup(name: str) -> Kind | None:
    """Any spelling a user may type (`gtp`, `serviceexports.flomesh.io`, `Service`) -> Kind."""
    return _LOOKUP.get(name.strip().lower())


def resolve_kind(name: str) -> Kind:
    from controller.errors import NotFound

    kind = lookup(name)
    if kind is None:
        known = ", ".join(sorted(k.plural for k in KINDS))
        raise NotFound(f"unknown resource type {name!r}; known: {known}")
    return kind
