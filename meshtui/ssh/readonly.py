"""A read-only view of a controller, for viewer sessions and `meshtui attach --readonly`: reads,
streams and metrics pass through; writes are refused here, whatever the TUI lets through."""
from __future__ import annotations

from typing import Any, AsyncIterator

from controller.errors import Forbidden
from controller.interface import AuditEntry, CheckResult, Controller, GoldenRow, TapDropped, TapEvent, TapFilter, WatchEvent


class ReadOnlyController(Controller):
    read_only = True

    def __init__(self, inner: Controller, who: str = "viewer sessions") -> None:
        self.inner = inner
        self.who = who

    async def apply(self, manifests: str | list[dict[str, Any]], *, cluster: str | None = None, namespace: str | None = None,
                    user: str = "", source: str = "input") -> list[dict[str, Any]]:
        raise Forbidden(f"{self.who} cannot write")

    async def delete(self, kind: str, name: str, *, cluster: str | None = None, namespace: str | None = None,
                     user: str = "") -> dict[str, Any]:
        raise Forbidden(f"{self.who} cannot write")

    async def get(self, kind: str, name: str, *, cluster: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        return await self.inner.get(kind, name, cluster=cluster, namespace=namespace)

    async def list(self, kind: str, *, cluster: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        return await self.inner.list(kind, cluster=cluster, namespace=namespace)

    def watch(self, kinds: list[str] | None = None, *, cluster: str | None = None, since: int | None = None) -> AsyncIterator[WatchEvent]:
        return self.inner.watch(kinds, cluster=cluster, since=since)

    def tap(self, flt: TapFilter) -> AsyncIterator[TapEvent | TapDropped]:
        return self.inner.tap(flt)

    async def golden(self, window: str = "10s") -> list[GoldenRow]:
        return await self.inner.golden(window)

    async def checks(self) -> list[CheckResult]:
        return await self.inner.checks()

    async def audit(self, limit: int = 200) -> list[AuditEntry]:
        return await self.inner.audit(limit)

    async def close(self) -> None:
        """The wrapped controller belongs to whoever made it; closing the view leaves it open."""
