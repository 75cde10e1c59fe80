"""The resource kinds of DESIGN section 3, as pydantic models of their bodies.

Each model validates what a user may write; `status` is derived and never
accepted from an apply. Our own kinds refuse unknown fields (a typo such as
`lbtype` is an error, not silently ignored); `v1` kinds keep fields they do not
use, as copied manifests carry many.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .meta import NAME_PATTERN


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- Cluster ------------------------------------------------------------------------------
class ClusterSpec(Strict):
    gatewayHost: str | None = None
    gatewayPort: int | None = Field(default=None, ge=1, le=65535)
    kubeconfig: str | None = None
    context: str | None = None
    region: str = "default"
    zone: str = "default"
    group: str = "default"
    production: bool = False  # the TUI gives a production cluster's rows an accent


def cluster_key(name: str, spec: dict | None) -> str:
    spec = spec or {}
    return "/".join((spec.get("region") or "default", spec.get("zone") or "default", spec.get("group") or "default", name))


# --- ServiceExport ------------------------------------------------------------------------
class ExportRule(Strict):
    portNumber: int = Field(ge=1, le=65535)
    path: str = "/"
    pathType: Literal["Prefix", "Exact"] = "Prefix"

    @field_validator("path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with /")
        return v


class ServiceExportSpec(Strict):
    rules: list[ExportRule] = Field(default_factory=list)
    serviceAccountName: str = "*"
    targetClusters: list[str] = Field(default_factory=list)
    loadBalancer: Literal["RoundRobinLoadBalancer", "HashingLoadBalancer", "LeastWorkLoadBalancer"] = "RoundRobinLoadBalancer"
    pathRewrite: dict | None = None  # present in FSM's CRD; accepted, unused
    sessionSticky: bool | None = None  # present in FSM's CRD; accepted, unused


# --- ServiceImport (derived) --------------------------------------------------------------
class ImportTarget(Loose):
    host: str
    ip: str = ""
    path: str = "/"
    port: int


class ImportEndpoint(Loose):
    clusterKey: str
    target: ImportTarget


class ImportPort(Loose):
    port: int
    protocol: str = "TCP"
    appProtocol: str | None = None
    endpoints: list[ImportEndpoint] = Field(default_factory=list)


class ServiceImportSpec(Loose):
    type: str = "ClusterSetIP"
    ports: list[ImportPort] = Field(default_factory=list)
    serviceAccountName: str = "*"


# --- GlobalTrafficPolicy ------------------------------------------------------------------
class TrafficTarget(Strict):
    clusterKey: str = Field(min_length=1)
    weight: int | None = Field(default=None, ge=0)


class GlobalTrafficPolicySpec(Strict):
    lbType: Literal["Locality", "FailOver", "ActiveActive"] = "Locality"
    targets: list[TrafficTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _locality_targets(self) -> "GlobalTrafficPolicySpec":
        if self.lbType == "Locality" and len(self.targets) > 1:
            raise ValueError("policy Locality allows at most one target (the local cluster)")
        return self


# --- v1 Service / Endpoints / EndpointSlice -----------------------------------------------
class ServicePort(Loose):
    name: str | None = None
    port: int = Field(ge=1, le=65535)
    targetPort: int | str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    appProtocol: str | None = None


class ServiceSpec(Loose):
    selector: dict[str, str] | None = None
    ports: list[ServicePort] = Field(default_factory=list)


class EndpointAddress(Loose):
    ip: str
    hostname: str | None = None


class EndpointPort(Loose):
    name: str | None = None
    port: int = Field(ge=1, le=65535)
    protocol: str = "TCP"


class EndpointSubset(Loose):
    addresses: list[EndpointAddress] = Field(default_factory=list)
    notReadyAddresses: list[EndpointAddress] = Field(default_factory=list)
    ports: list[EndpointPort] = Field(default_factory=list)


class SliceConditions(Loose):
    ready: bool | None = None


class SliceEndpoint(Loose):
    addresses: list[str] = Field(min_length=1)
    conditions: SliceConditions = Field(default_factory=SliceConditions)


# --- TrafficSplit (SMI) -------------------------------------------------------------------
class SplitBackend(Strict):
    service: str = Field(min_length=1)
    weight: int = Field(ge=0)


class TrafficSplitSpec(Strict):
    service: str = Field(min_length=1)
    backends: list[SplitBackend] = Field(min_length=1)
    matches: list[dict] | None = None


# --- Workload (meshtui) -------------------------------------------------------------------
class WorkloadSpec(Strict):
    app: Literal["echo", "grpc-echo"] = "echo"  # proxy/samples/<app with - as _>.py
    replicas: int = Field(default=1, ge=0, le=100)
    port: int = Field(default=8080, ge=1, le=65535)
    message: str = ""
    errorRate: float = Field(default=0.0, ge=0.0, le=1.0)
    latencyMs: int = Field(default=0, ge=0, le=60_000)
    serviceAccountName: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)


# --- Link (meshtui) -----------------------------------------------------------------------
class ProbeSpec(Strict):
    path: str = "/ready"
    port: int | None = Field(default=None, ge=1, le=65535)
    period: float = Field(default=3.0, gt=0)  # seconds
    failureThreshold: int = Field(default=3, ge=1)
    timeout: float = Field(default=1.0, gt=0)


class LinkSpec(Strict):
    sourceCluster: str = Field(min_length=1, pattern=NAME_PATTERN)
    targetCluster: str = Field(min_length=1, pattern=NAME_PATTERN)
    gatewayAddress: str | None = None  # host:port; defaults to the target's gateway
    probe: ProbeSpec = Field(default_factory=ProbeSpec)


# --- ExternalService (meshtui) ------------------------------------------------------------
class ExternalTLS(Strict):
    """TLS the proxy originates to the external service: verified against `caBundle` (PEM)
    or the PEM file `caFile` (read by the controller), else the system's trust store, as
    `serverName` (default: the host)."""

    caBundle: str | None = None
    caFile: str | None = None
    serverName: str | None = None

    @field_validator("caBundle")
    @classmethod
    def _pem(cls, v: str | None) -> str | None:
        if v is not None:
            from cryptography import x509
            try:
                if not x509.load_pem_x509_certificates(v.encode()):
                    raise ValueError
            except ValueError:
                raise ValueError("must hold PEM certificates (-----BEGIN CERTIFICATE-----)") from None
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "ExternalTLS":
        if self.caBundle and self.caFile:
            raise ValueError("give caBundle or caFile, not both")
        return self


class ExternalServiceSpec(Strict):
    """A name inside the mesh (`<name>.<namespace>:<port>`) for a service outside it."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    appProtocol: Literal["http", "http2", "grpc", "tcp"] = "http"
    tls: ExternalTLS | None = None
