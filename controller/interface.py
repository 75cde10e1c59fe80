"""The Controller interface: the seam of the whole product.

The TUI, the CLI and the SSH server use only this. Two implementations:
`controller.embedded.EmbeddedController` (in-process) and
`controller.remote.RemoteController` (the HTTP API's client).

Resources cross this seam as plain dicts shaped like Kubernetes objects
(`apiVersion`, `kind`, `metadata`, `spec`, `status`); `metadata.cluster` names the
member cluster of a namespaced resource (a meshtui extension, like a kubectl
context). Kind arguments accept any alias (`svcexp`, `serviceexports`, `gtp`, ...).
"""
from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any, AsyncIterator

from proxy.events import TapDropped, TapEvent, TapFilter

__all__ = ["Controller", "WatchEvent", "GoldenRow", "CheckResult", "AuditEntry", "TapEvent", "TapFilter", "TapDropped"]


@dataclass(slots=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "object": self.object}


@dataclass(slots=True)
class GoldenRow:
    """Golden metrics of one scope over one window.

    scope: `service` (cluster+namespace+service), `cluster` (cluster only) or
    `edge` (src_cluster -> dst_cluster, namespace+service of the destination).
    Latencies in milliseconds; success_rate in 0..1, None when no requests."""

    scope: str
    window: str  # "10s" | "1m"
    cluster: str = ""
    namespace: str = ""
    service: str = ""
    src_cluster: str = ""
    dst_cluster: str = ""
    requests: int = 0
    success_rate: float | None = None
    rps: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class CheckResult:
    group: str  # e.g. "resources", "identity", "gateways"
    name: str
    ok: bool
    message: str = ""
    hint: str = ""
    warning: bool = False  # shown with ‼ and does not fail the run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class AuditEntry:
    ts: float
    user: str
    action: str  # apply | delete | link | unlink | ...
    kind: str
    cluster: str
    namespace: str
    name: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Controller(abc.ABC):
    """What every front end may ask of the control plane."""

    read_only: bool = False

    # resources ------------------------------------------------------------------
    @abc.abstractmethod
    async def apply(
        self,
        manifests: str | list[dict[str, Any]],
        *,
        cluster: str | None = None,
        namespace: str | None = None,
        user: str = "",
        source: str = "input",
    ) -> list[dict[str, Any]]:
        """Validate and store every document, all or nothing. Returns the stored
        objects. Raises InvalidResource (nothing stored) or Conflict. `source` names
        the input (a file name) in error messages."""

    @abc.abstractmethod
    async def get(self, kind: str, name: str, *, cluster: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        """One object; raises NotFound."""

    @abc.abstractmethod
    async def list(self, kind: str, *, cluster: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind; cluster/namespace None means all."""

    @abc.abstractmethod
    async def delete(self, kind: str, name: str, *, cluster: str | None = None, namespace: str | None = None, user: str = "") -> dict[str, Any]:
        """Delete and return the last state; raises NotFound."""

    @abc.abstractmethod
    def watch(self, kinds: list[str] | None = None, *, cluster: str | None = None, since: int | None = None) -> AsyncIterator[WatchEvent]:
        """Changes as they happen. With since=None, first an ADDED event for every
        existing object, then a BOOKMARK, then live changes."""

    # traffic -------------------------------------------------------------------
    @abc.abstractmethod
    def tap(self, flt: TapFilter) -> AsyncIterator[TapEvent | TapDropped]:
        """Live request events of every proxy, filtered; TapDropped tells a slow
        reader how many events it lost."""

    @abc.abstractmethod
    async def golden(self, window: str = "10s") -> list[GoldenRow]:
        """Golden metrics per service, per cluster and per edge."""

    # operations ----------------------------------------------------------------
    @abc.abstractmethod
    async def checks(self) -> list[CheckResult]:
        """Health checks in the spirit of `linkerd check`."""

    @abc.abstractmethod
    async def audit(self, limit: int = 200) -> list[AuditEntry]:
        """Who changed what, newest last."""

    @abc.abstractmethod
    async def close(self) -> None:
        ...
