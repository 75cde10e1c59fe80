"""The configuration a proxy accepts, as plain typed data.

The controller computes it (controller/reconcile/routes.py) and sends it as JSON
(`ProxyConfig.to_dict()` / `ProxyConfig.from_dict()`); the proxy never imports
the controller.

Routing model of one outbound service (`ServiceRoute`):
- `tiers` are tried in order: the first tier that has at least one healthy
  endpoint serves the request (Locality = [local], FailOver = [local, targets],
  ActiveActive = [local + targets]).
- inside a tier, a `BackendGroup` (one cluster) is picked by weight, per request,
  then an endpoint of that group by the route's balancer.
- `split` (SMI TrafficSplit) replaces the tiers: a backend service is picked by
  weight and its own route is used.
- `unroutable` is the 503 body when no tier has a healthy endpoint.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

PROTOCOLS: Final = ("http", "http2", "grpc", "tcp")
BALANCERS: Final = ("ewma", "round-robin", "hashing")


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    cluster: str
    # Remote endpoints are reached through the exporting cluster's gateway:
    # the request path is prefixed with `path_prefix` and the hop uses mTLS.
    gateway: bool = False
    path_prefix: str = ""
    # Identity (SPIFFE URI) the TLS peer must present; empty means do not check.
    server_identity: str = ""
    # h2-beyond (ExternalService): TLS originated by the proxy to a server outside the mesh,
    # verified against `tls_ca` (PEM; empty = the system's trust store) as `tls_server_name`
    # (SNI and the name checked; empty = host). Both empty: no TLS.
    tls_server_name: str = ""
    tls_ca: str = ""

    @property
    def originates_tls(self) -> bool:
        return bool(self.tls_server_name or self.tls_ca)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BackendGroup:
    cluster: str
    weight: int
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class SplitBackend:
    service: str  # name of a service in the same namespace (may be a mirrored name)
    weight: int


@dataclass(frozen=True, slots=True)
class ServiceRoute:
    namespace: str
    name: str
    port: int
    protocol: str = "http"
    policy: str = "Locality"
    tiers: tuple[tuple[BackendGroup, ...], ...] = ()
    split: tuple[SplitBackend, ...] = ()
    balancer: str = "ewma"
    timeout_ms: int = 10_000
    unroutable: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.namespace, self.name, self.port)


@dataclass(frozen=True, slots=True)
class GatewayRule:
    """One exported (service, port) reachable through this cluster's gateway."""

    path: str
    path_type: str  # Prefix (element-wise, as Kubernetes Ingress) | Exact
    namespace: str
    service: str
    port: int
    endpoints: tuple[Endpoint, ...]
    protocol: str = "http"
    allowed_clusters: tuple[str, ...] = ()  # cluster names; empty = every member
    service_account: str = "*"  # "*" or the one account allowed to call
    balancer: str = "ewma"


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    cluster: str
    cluster_key: str
    version: int = 0
    routes: tuple[ServiceRoute, ...] = ()
    gateway: tuple[GatewayRule, ...] = ()
    # l4: the outbound proxy also listens on every service port of its host (a ClusterIP:port,
    # proxy/tcp/listeners.py), detecting HTTP there and proxying anything else at L4. Off:
    # only the ports declared `tcp` get a listener.
    port_listeners: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProxyConfig":
        def endpoint(d: dict) -> Endpoint:
            return Endpoint(**d)

        def group(d: dict) -> BackendGroup:
            return BackendGroup(d["cluster"], d["weight"], tuple(endpoint(e) for e in d["endpoints"]))

        routes = tuple(
            ServiceRoute(
                **{
                    **r,
                    "tiers": tuple(tuple(group(g) for g in tier) for tier in r.get("tiers", ())),
                    "split": tuple(SplitBackend(**s) for s in r.get("split", ())),
                }
            )
            for r in data.get("routes", ())
        )
        gateway = tuple(
            GatewayRule(
                **{
                    **g,
                    "endpoints": tuple(endpoint(e) for e in g["endpoints"]),
                    "allowed_clusters": tuple(g.get("allowed_clusters", ())),
                }
            )
            for g in data.get("gateway", ())
        )
        return cls(
            cluster=data["cluster"],
            cluster_key=data["cluster_key"],
            version=data.get("version", 0),
            routes=routes,
            gateway=gateway,
            port_listeners=bool(data.get("port_listeners", False)),
        )


@dataclass(slots=True)
class Limits:
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 60.0
    request_timeout_s: float = 30.0
    connect_timeout_s: float = 2.0
    pool_max_idle_per_endpoint: int = 64
    # l4: on a service port's listener, a connection that has not shown HTTP within this time
    # (a server-speaks-first protocol) is proxied at L4
    detect_timeout_s: float = 1.0


@dataclass(slots=True)
class ListenSettings:
    """Where one proxy process listens, and with which TLS material."""

    cluster: str
    outbound: str = ""  # host:port, empty = not started
    gateway: str = ""
    admin: str = ""
    tls_dir: str = ""  # holds the leaf cert/key and the trust bundle when mTLS is on
    admin_token: str = ""  # bearer token the admin port requires for writes (PUT /config)
    limits: Limits = field(default_factory=Limits)
