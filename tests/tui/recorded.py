"""A recorded-data fixture: a real EmbeddedController (resources applied through it) whose golden()
and tap() replay a fixed recording, since the embedded data plane reports no traffic yet.

Everything else — apply, get, list, delete, watch, checks, audit — is the real controller."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

from controller.embedded import EmbeddedController
from controller.interface import AuditEntry, CheckResult, Controller, GoldenRow, WatchEvent
from proxy.events import TapDropped, TapEvent, TapFilter

T0 = 1_790_000_000.0  # fixed timestamps keep snapshots stable

# Three golden frames, returned in turn (trend lines need more than one point).
GOLDEN_FRAMES: list[list[GoldenRow]] = []
for i, load in enumerate((10.0, 14.0, 12.0)):
    GOLDEN_FRAMES.append([
        GoldenRow("cluster", "10s", cluster="cluster-1", requests=int(load * 10), success_rate=1.0, rps=load / 2, p50_ms=2.0, p95_ms=4.0, p99_ms=6.0),
        GoldenRow("cluster", "10s", cluster="cluster-2", requests=int(load * 10), success_rate=0.98, rps=load, p50_ms=3.0, p95_ms=9.0, p99_ms=14.0 + i),
        GoldenRow("cluster", "10s", cluster="cluster-3", requests=int(load * 10), success_rate=0.96, rps=load / 2, p50_ms=2.5, p95_ms=5.0, p99_ms=8.0),
        GoldenRow("service", "10s", cluster="cluster-2", namespace="httpbin", service="httpbin", requests=int(load * 10),
                  success_rate=0.98, rps=load, p50_ms=3.0, p95_ms=9.0, p99_ms=14.0 + i),
        GoldenRow("service", "10s", cluster="cluster-1", namespace="httpbin", service="httpbin", requests=50,
                  success_rate=1.0, rps=load / 2, p50_ms=2.0, p95_ms=4.0, p99_ms=6.0),
        GoldenRow("edge", "10s", namespace="httpbin", service="httpbin", src_cluster="cluster-2", dst_cluster="cluster-1",
                  requests=50, success_rate=1.0, rps=load / 2, p50_ms=2.0, p95_ms=4.0, p99_ms=6.0),
        GoldenRow("edge", "10s", namespace="httpbin", service="httpbin", src_cluster="cluster-2", dst_cluster="cluster-3",
                  requests=50, success_rate=0.96, rps=load / 2, p50_ms=2.5, p95_ms=5.0, p99_ms=8.0),
    ])


def _request(n: int) -> list[TapEvent]:
    dst = "cluster-1" if n % 2 == 0 else "cluster-3"
    status = 503 if n == 7 else 200
    common = dict(direction="outbound", cluster="cluster-2", src_cluster="cluster-2", src_identity="spiffe://meshtui.local/cluster/cluster-2/ns/curl/sa/curl",
                  dst_cluster=dst, dst_namespace="httpbin", dst_service="httpbin", method="GET", authority="httpbin.httpbin:8080",
                  path=f"/get/{n % 3}", tls=True)
    rid = f"req-{n:03d}"
    ts = T0 + n * 0.25
    return [
        TapEvent(rid, "request_init", ts=ts, **common),
        TapEvent(rid, "response_init", ts=ts + 0.003, status=status, latency_ms=3.0 + n % 4, dst_endpoint=f"127.0.1{dst[-1]}.1:4143", **common),
        TapEvent(rid, "response_end", ts=ts + 0.004, status=status, latency_ms=3.0 + n % 4, duration_ms=4.0 + n % 4, bytes=48 + n,
                 dst_endpoint=f"127.0.1{dst[-1]}.1:4143", error="upstream reset" if status == 503 else "", **common),
    ]


TAP_EVENTS: list[TapEvent] = [e for n in range(12) for e in _request(n)]
REQUESTS = 12


class RecordedController(Controller):
    def __init__(self, inner: EmbeddedController, golden_frames=GOLDEN_FRAMES, tap_events=TAP_EVENTS) -> None:
        self.inner = inner
        self.core = inner.core
        self.read_only = inner.read_only
        self.golden_frames = golden_frames
        self.tap_events = tap_events
        self.golden_calls = 0

    async def apply(self, manifests, *, cluster=None, namespace=None, user: str = "") -> list[dict]:
        return await self.inner.apply(manifests, cluster=cluster, namespace=namespace, user=user)

    async def get(self, kind, name, *, cluster=None, namespace=None):
        return await self.inner.get(kind, name, cluster=cluster, namespace=namespace)

    async def list(self, kind, *, cluster=None, namespace=None):
        return await self.inner.list(kind, cluster=cluster, namespace=namespace)

    async def delete(self, kind, name, *, cluster=None, namespace=None, user: str = ""):
        return await self.inner.delete(kind, name, cluster=cluster, namespace=namespace, user=user)

    def watch(self, kinds=None, *, cluster=None, since=None) -> AsyncIterator[WatchEvent]:
        return self.inner.watch(kinds, cluster=cluster, since=since)

    async def tap(self, flt: TapFilter) -> AsyncIterator[TapEvent | TapDropped]:
        for e in self.tap_events:
            if flt.matches(e):
                yield e
        await asyncio.Event().wait()  # a live stream stays open

    async def golden(self, window: str = "10s") -> list[GoldenRow]:
        if not self.golden_frames:
            return []
        frame = self.golden_frames[min(self.golden_calls, len(self.golden_frames) - 1)]
        self.golden_calls += 1
        return frame

    async def checks(self) -> list[CheckResult]:
        return await self.inner.checks()

    async def audit(self, limit: int = 200) -> list[AuditEntry]:
        return await self.inner.audit(limit)

    async def close(self) -> None:
        await self.inner.close()
