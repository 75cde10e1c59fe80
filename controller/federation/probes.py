"""Gateway probes: the controller asks every cluster's gateway whether it is alive (GET on its
admin /ready, like Linkerd's gateway probes), and reports each verdict (alive after a success,
dead after `failureThreshold` consecutive failures) so the runtime can tell every proxy and
record it in the Cluster's status and the Links that target it. A Link whose target is the
cluster overrides the probe's path, port, period, timeout and threshold.

Timing: one probe per period while the gateway answers (or once dead); after a failure the
next probes come `period / failureThreshold` apart, so a gateway that stops answering is
declared dead within one period of its first failed probe while one lost probe alone never
kills it. Each state keeps the successful probes' latencies of the last LATENCY_WINDOW_S
for p50/p95/p99."""
from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import aiohttp

from controller.reconcile.state import ADMIN_PORT, FederationState

from .layout import ProxyPlan

PERIOD_S = 2.0
TIMEOUT_S = 1.0
FAILURE_THRESHOLD = 3
LATENCY_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    cluster: str
    gateway: str  # host:port as the routes name the gateway (Endpoint.address)
    url: str
    period_s: float = PERIOD_S
    timeout_s: float = TIMEOUT_S
    failure_threshold: int = FAILURE_THRESHOLD


@dataclass(slots=True)
class ProbeState:
    alive: bool = True  # optimistic until the threshold of failures
    checked: bool = False
    failures: int = 0  # consecutive
    latency_ms: float | None = None  # of the last successful probe
    error: str = ""  # of the last failed probe, kept after a success
    last_probe: float | None = None  # time.time() of the last probe
    window: deque = field(default_factory=deque)  # (monotonic time, latency ms) of recent successes

    def quantiles(self, now: float, window_s: float = LATENCY_WINDOW_S) -> tuple[float, float, float] | None:
        """p50, p95, p99 of the successful probes' latencies over the last `window_s` (nearest rank)."""
        values = sorted(ms for t, ms in self.window if t >= now - window_s)
        if not values:
            return None

        def rank(q: float) -> float:
            return values[max(0, min(len(values) - 1, math.ceil(q * len(values)) - 1))]

        return rank(0.50), rank(0.95), rank(0.99)


def probe_targets(state: FederationState, plans: dict[str, ProxyPlan]) -> dict[str, ProbeTarget]:
    """Pure: one target per cluster whose gateway address is known."""
    links = {}
    for link in sorted(state.links.values(), key=lambda o: o["metadata"]["name"]):
        links.setdefault(link["spec"]["targetCluster"], link["spec"])
    out: dict[str, ProbeTarget] = {}
    for name in state.clusters:
        gw = state.gateway_address(name)
        if gw is None:
            continue
        link = links.get(name)
        probe = (link or {}).get("probe") or {}
        plan = plans.get(name)
        admin_host, admin_port = plan.admin.rsplit(":", 1) if plan else (gw.ip, str(ADMIN_PORT))
        host = admin_host
        if link and link.get("gatewayAddress"):
            host = link["gatewayAddress"].rsplit(":", 1)[0]
        port = probe.get("port") or admin_port
        out[name] = ProbeTarget(
            cluster=name, gateway=f"{gw.ip}:{gw.port}", url=f"http://{host}:{port}{probe.get('path', '/ready')}",
            period_s=float(probe.get("period", PERIOD_S)) if link else PERIOD_S,
            timeout_s=float(probe.get("timeout", TIMEOUT_S)) if link else TIMEOUT_S,
            failure_threshold=int(probe.get("failureThreshold", FAILURE_THRESHOLD)) if link else FAILURE_THRESHOLD,
        )
    return out


def record_probe(st: ProbeState, ok: bool, latency_ms: float | None, error: str, threshold: int,
                 now: float = 0.0, window_s: float = LATENCY_WINDOW_S) -> bool:
    """Pure: fold one probe result (at monotonic time `now`) into the state; True when the verdict
    changed (or is the first)."""
    before = (st.alive, st.checked)
    st.checked = True
    if ok:
        st.failures, st.alive, st.latency_ms = 0, True, latency_ms
        if latency_ms is not None:
            st.window.append((now, latency_ms))
    else:
        st.failures += 1
        st.error = error
        if st.failures >= threshold:
            st.alive = False
    while st.window and st.window[0][0] < now - window_s:
        st.window.popleft()
    return (st.alive, st.checked) != before


def next_delay(target: ProbeTarget, st: ProbeState) -> float:
    """Pure: seconds from one probe's start to the next (see the module doc)."""
    if st.failures and st.alive:
        return target.period_s / target.failure_threshold
    return target.period_s


class GatewayProber:
    def __init__(self, session: aiohttp.ClientSession,
                 on_result: Callable[[ProbeTarget, ProbeState, bool], None]) -> None:
        """`on_result(target, state, verdict_changed)` after every probe."""
        self.session = session
        self.on_result = on_result
        self.states: dict[str, ProbeState] = {}
        self.targets: dict[str, ProbeTarget] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    def update(self, targets: dict[str, ProbeTarget]) -> None:
        for name in list(self._tasks):
            if targets.get(name) != self.targets.get(name):
                self._tasks.pop(name).cancel()
                if name not in targets:
                    self.states.pop(name, None)
        for name, target in targets.items():
            if name not in self._tasks:
                self.states.setdefault(name, ProbeState())
                self._tasks[name] = asyncio.create_task(self._loop(target), name=f"probe {name}")
        self.targets = dict(targets)

    def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    async def _loop(self, target: ProbeTarget) -> None:
        while True:
            started = time.monotonic()
            ok, latency, error = await self._probe(target)
            st = self.states.setdefault(target.cluster, ProbeState())
            st.last_probe = time.time()
            changed = record_probe(st, ok, latency, error, target.failure_threshold, time.monotonic())
            self.on_result(target, st, changed)
            await asyncio.sleep(max(0.0, next_delay(target, st) - (time.monotonic() - started)))

    async def _probe(self, target: ProbeTarget) -> tuple[bool, float | None, str]:
        started = time.perf_counter()
        try:
            async with self.session.get(target.url, timeout=aiohttp.ClientTimeout(total=target.timeout_s)) as resp:
                await resp.read()
                if resp.status != 200:
                    return False, None, f"{target.url}: {resp.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            return False, None, f"{target.url}: {e or type(e).__name__}"
        return True, (time.perf_counter() - started) * 1000, ""
