"""Tap events and filters: what an observer of the data plane receives.

Field names follow DESIGN section 4. Events are plain dicts on the wire
(`TapEvent.to_dict()`); `kind` is `request_init`, `response_init` or `response_end`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

EVENT_KINDS = ("request_init", "response_init", "response_end")
DIRECTIONS = ("outbound", "inbound", "gateway")


@dataclass(slots=True)
class TapEvent:
    id: str
    kind: str
    direction: str
    cluster: str  # the observing cluster (where the proxy runs)
    src_cluster: str = ""
    src_identity: str = ""
    dst_cluster: str = ""
    dst_namespace: str = ""
    dst_service: str = ""
    dst_endpoint: str = ""
    method: str = ""
    scheme: str = "http"
    authority: str = ""
    path: str = ""
    status: int = 0
    latency_ms: float = 0.0  # time to first byte of the response
    duration_ms: float = 0.0
    bytes: int = 0
    tls: bool = False
    grpc_status: int | None = None
    error: str = ""
    ts: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class TapFilter:
    cluster: str = ""
    namespace: str = ""
    service: str = ""
    method: str = ""
    path_prefix: str = ""
    authority: str = ""
    max_rps: float = 0.0  # 0 = no cap
    kinds: tuple[str, ...] = field(default=EVENT_KINDS)

    def matches(self, e: TapEvent) -> bool:
        return e.kind in self.kinds and self.selects_route(e) and self.selects_request(e.method, e.path)

    def selects_route(self, e: TapEvent) -> bool:
        """The part of `matches` that every event of one destination's requests shares."""
        return (
            (not self.cluster or self.cluster in (e.cluster, e.dst_cluster))
            and (not self.namespace or e.dst_namespace == self.namespace)
            and (not self.service or e.dst_service == self.service)
            and (not self.authority or e.authority == self.authority)
        )

    def selects_request(self, method: str, path: str) -> bool:
        """The part of `matches` that depends on the request itself."""
        return (not self.method or method == self.method.upper()) and (
            not self.path_prefix or path.startswith(self.path_prefix))

    @property
    def per_request(self) -> bool:
        """Whether `selects_request` can say no."""
        return bool(self.method or self.path_prefix)

    @classmethod
    def from_query(cls, q: dict[str, str]) -> "TapFilter":
        return cls(
            cluster=q.get("cluster", ""),
            namespace=q.get("namespace", ""),
            service=q.get("service", ""),
            method=q.get("method", ""),
            path_prefix=q.get("path", ""),
            authority=q.get("authority", ""),
            max_rps=float(q.get("max_rps", 0) or 0),
            kinds=tuple(q["kinds"].split(",")) if q.get("kinds") else EVENT_KINDS,
        )

    def to_query(self) -> dict[str, str]:
        out = {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "service": self.service,
            "method": self.method,
            "path": self.path_prefix,
            "authority": self.authority,
        }
        if self.max_rps:
            out["max_rps"] = str(self.max_rps)
        if tuple(self.kinds) != EVENT_KINDS:
            out["kinds"] = ",".join(self.kinds)
        return {k: v for k, v in out.items() if v}


@dataclass(slots=True)
class TapDropped:
    """Sent to a subscriber that fell behind: how many events it lost."""

    dropped: int
    kind: str = "dropped"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "dropped": self.dropped}
