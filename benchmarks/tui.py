"""TUI responsiveness and memory under load.

A real EmbeddedController holds generated resources (2,000 service rows across 4 clusters by
default); golden() reports new figures for every service each poll (alternating between two
prepared sets) and tap() replays recorded requests at 5,000 events/s (the data plane under test
elsewhere). The app runs headless at 120x36.

Measured: the time from a key press to the first rendered frame that shows its effect (frames are
also serialized to terminal bytes, as a real terminal would need), p50/p99 over many presses, in
  - Services (2,000 rows, every metric cell changing each second),
  - Tap (5,000 events/s arriving), and
  - Services `/` filter typing (the table shrinks and grows by hundreds of rows),
against a reference in the same run: the same presses on the idle reference scenario (9 rows, no
traffic). Then RSS while the app keeps running under load for --duration seconds, switching views.

    .venv/bin/python -m benchmarks.tui --duration 600
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from pathlib import Path
from typing import AsyncIterator, Callable

from textual._compositor import CompositorUpdate  # only to serialize frames like a real terminal write

from controller.embedded import EmbeddedController
from controller.interface import AuditEntry, CheckResult, Controller, GoldenRow, WatchEvent
from meshtui.tui.app import MeshApp
from meshtui.tui.logic.filtering import RowFilter
from meshtui.tui.widgets.tables import LiveTable
from proxy.events import TapDropped, TapEvent, TapFilter

SIZE = (120, 36)
POOL_REQUESTS = 20_000  # more than the TUI's buffers keep, so replayed ids are never still open
GOLDEN_SETS = 2  # golden() alternates between sets of figures
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class LoadedController(Controller):
    """The real controller, with golden() and tap() replaying generated traffic."""

    def __init__(self, inner: EmbeddedController, services: list[tuple[str, str, str]], tap_rate: float) -> None:
        self.inner, self.read_only = inner, False
        self.services, self.tap_rate = services, tap_rate
        self.rng = random.Random(7)
        self.delivered = 0
        self.golden_sets: list[list[GoldenRow]] = []
        self.polls = 0
        r = self.rng.random
        for _ in range(GOLDEN_SETS):
            rows = [GoldenRow("service", "10s", cluster=c, namespace=ns, service=n, requests=100, success_rate=0.9 + r() / 10,
                              rps=r() * 50, p50_ms=1 + r() * 5, p95_ms=5 + r() * 20, p99_ms=10 + r() * 50) for c, ns, n in services]
            rows += [GoldenRow("cluster", "10s", cluster=c, requests=1000, success_rate=0.99, rps=100 + r() * 50, p99_ms=30)
                     for c in sorted({c for c, _, _ in services})]
            self.golden_sets.append(rows)
        clusters = sorted({c for c, _, _ in services}) or ["cluster-1"]
        # A pool of distinct requests replayed in a loop: building events is the data plane's cost, not the TUI's.
        self.pool: list[TapEvent] = []
        for n in range(POOL_REQUESTS):
            src, dst = clusters[n % len(clusters)], clusters[(n + 1) % len(clusters)]
            _, ns, name = services[n % len(services)] if services else ("", "default", "svc")
            common = dict(direction="outbound", cluster=src, src_cluster=src, dst_cluster=dst, dst_namespace=ns,
                          dst_service=name, method="GET", authority=f"{name}.{ns}:8080", path=f"/api/{n % 7}", tls=True)
            status = 503 if n % 17 == 0 else 200
            rid = f"r{n}"
            self.pool += [
                TapEvent(rid, "request_init", **common),
                TapEvent(rid, "response_init", status=status, latency_ms=2.0 + n % 9, **common),
                TapEvent(rid, "response_end", status=status, latency_ms=2.0 + n % 9, duration_ms=3.0 + n % 9, bytes=200 + n, **common),
            ]

    async def apply(self, manifests, *, cluster=None, namespace=None, user=""):
        return await self.inner.apply(manifests, cluster=cluster, namespace=namespace, user=user)

    async def get(self, kind, name, *, cluster=None, namespace=None):
        return await self.inner.get(kind, name, cluster=cluster, namespace=namespace)

    async def list(self, kind, *, cluster=None, namespace=None):
        return await self.inner.list(kind, cluster=cluster, namespace=namespace)

    async def delete(self, kind, name, *, cluster=None, namespace=None, user=""):
        return await self.inner.delete(kind, name, cluster=cluster, namespace=namespace, user=user)

    def watch(self, kinds=None, *, cluster=None, since=None) -> AsyncIterator[WatchEvent]:
        return self.inner.watch(kinds, cluster=cluster, since=since)

    async def tap(self, flt: TapFilter) -> AsyncIterator[TapEvent | TapDropped]:
        if not self.tap_rate:
            await asyncio.Event().wait()
        start, sent = time.perf_counter(), 0
        while True:
            due = int((time.perf_counter() - start) * self.tap_rate)
            while sent < due:
                e = self.pool[sent % len(self.pool)]
                sent += 1
                if flt.matches(e):
                    self.delivered += 1
                    yield e
            await asyncio.sleep(0.005)

    async def golden(self, window: str = "10s") -> list[GoldenRow]:
        """Every figure of every service differs from the previous poll's. The rows come from sets
        built once: building 100,000 rows a second is the controller's cost, not the TUI's."""
        self.polls += 1
        return list(self.golden_sets[self.polls % GOLDEN_SETS])

    async def checks(self) -> list[CheckResult]:
        return await self.inner.checks()

    async def audit(self, limit: int = 200) -> list[AuditEntry]:
        return await self.inner.audit(limit)

    async def close(self) -> None:
        await self.inner.close()


class ProbeApp(MeshApp):
    """Times the first frame that satisfies `probe` after a key press."""

    def __init__(self, controller: Controller) -> None:
        super().__init__(controller, user="bench")
        self.t0: float | None = None
        self.probe: Callable[[], bool] = lambda: True
        self.samples: list[float] = []
        self.missed = 0  # presses whose effect no frame showed within 5 s
        self.frames = 0

    def _display(self, screen, renderable) -> None:
        super()._display(screen, renderable)
        if renderable is None:
            return
        self.frames += 1
        if isinstance(renderable, CompositorUpdate):
            renderable.render_segments(self.console)
        if self.t0 is not None and self.probe():
            self.samples.append(time.perf_counter() - self.t0)
            self.t0 = None


async def build(services: int, clusters: int) -> tuple[EmbeddedController, list[tuple[str, str, str]]]:
    controller = await EmbeddedController.open(None)
    names = [f"cluster-{i}" for i in range(1, clusters + 1)]
    await controller.apply("".join(
        f"---\napiVersion: flomesh.io/v1alpha1\nkind: Cluster\nmetadata: {{name: {c}}}\nspec: {{production: {str(i == 0).lower()}}}\n"
        for i, c in enumerate(names)))
    per_cluster = services // clusters
    keys = []
    for c in names:
        docs = []
        for i in range(per_cluster):
            ns, name = f"team-{i % 10}", f"svc-{i:04d}"
            keys.append((c, ns, name))
            docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                         "spec": {"ports": [{"port": 8080, "protocol": "TCP"}]}})
        await controller.apply(docs, cluster=c)
    exports = [{"apiVersion": "flomesh.io/v1alpha1", "kind": "ServiceExport", "metadata": {"name": f"svc-{i:04d}", "namespace": f"team-{i % 10}"},
                "spec": {"rules": [{"portNumber": 8080, "path": f"/{names[0]}/svc-{i:04d}"}]}} for i in range(min(50, per_cluster))]
    await controller.apply(exports, cluster=names[0])  # imported into the other clusters' same-named services
    return controller, sorted(keys)


async def reference_controller() -> EmbeddedController:
    controller = await EmbeddedController.open(None)
    await controller.apply((FIXTURES / "fsm_clusters.yaml").read_text())
    for c in ("cluster-1", "cluster-3"):
        await controller.apply((FIXTURES / f"fsm_httpbin_{c}.yaml").read_text(), cluster=c)
        await controller.apply((FIXTURES / f"fsm_export_{c}.yaml").read_text(), cluster=c)
    return controller


async def wait_until(pilot, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not reach the expected state")
        await pilot.pause(0.05)


async def press_and_time(pilot, app: ProbeApp, key: str, probe: Callable[[], bool]) -> None:
    app.probe = probe
    app.t0 = time.perf_counter()
    await pilot.press(key)
    deadline = time.monotonic() + 5
    while app.t0 is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    if app.t0 is not None:
        app.missed += 1
        app.t0 = None


async def cursor_presses(pilot, app: ProbeApp, presses: int, gap: float) -> list[float]:
    """Five up, five down, repeated; each press is timed until a frame shows the cursor on the
    row that was next to it (rows may move meanwhile: Tap scrolls, Services re-sorts)."""
    table = app.screen.query_one("#main", LiveTable)
    table.focus()
    table.move_cursor(row=min(5, table.row_count - 1))
    await pilot.pause()
    app.samples = []
    for i in range(presses):
        up = (i // 5) % 2 == 0
        row = table.cursor_row + (-1 if up else 1)
        if not 0 <= row < table.row_count:
            continue
        expected = table.coordinate_to_cell_key((row, 0)).row_key.value
        # the row may scroll away meanwhile (Tap at 5,000 events/s): then the cursor's index tells
        await press_and_time(pilot, app, "up" if up else "down",
                             lambda: table.selected_key() == expected or (expected not in table.rows and table.cursor_row == row))
        await asyncio.sleep(gap)
    return app.samples


async def filter_presses(pilot, app: ProbeApp, presses: int, gap: float) -> list[float]:
    """Type `/svc-00` one key at a time (each key re-filters 2,000 rows), then clear it."""
    screen = app.screen
    table = screen.query_one("#main", LiveTable)
    app.samples = []
    text = "svc-00"
    total = table.row_count
    done = 0
    while done < presses:
        await pilot.press("slash")
        for k in range(1, len(text) + 1):
            flt = RowFilter.compile(text[:k])
            expected = sum(1 for r in screen.build()[1] if flt.matches(r.cells))
            await press_and_time(pilot, app, text[k - 1], lambda: table.row_count == expected)
            done += 1
            await asyncio.sleep(gap)
        await pilot.press("escape")
        await wait_until(pilot, lambda: table.row_count == total)
    return app.samples


def figures(name: str, samples: list[float], reference: list[float] | None) -> str:
    if not samples:
        return f"{name:<28} no samples"
    ms = sorted(s * 1000 for s in samples)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    ratio = ""
    if reference:
        ref = sorted(s * 1000 for s in reference)
        ratio = f"   p99 {p99 / ref[min(len(ref) - 1, int(len(ref) * 0.99))]:.1f}x the idle reference"
    return f"{name:<28} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   max {ms[-1]:7.1f} ms   n={len(ms)}{ratio}"


async def main(args: argparse.Namespace) -> None:
    print(f"meshtui TUI benchmark: {SIZE[0]}x{SIZE[1]}, {args.services} service rows in {args.clusters} clusters, "
          f"{args.tap_rate:.0f} tap events/s offered, {args.presses} presses per case")

    # Both controllers first, as a real process holds its controller's state before the TUI starts
    # (the app freezes the heap out of the garbage collector's reach once its first view is live).
    inner, keys = await build(args.services, args.clusters)
    controller = LoadedController(inner, keys, args.tap_rate)
    # reference: the idle reference scenario
    ref_inner = await reference_controller()
    ref_app = ProbeApp(LoadedController(ref_inner, [], 0))
    async with ref_app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: ref_app.screen.query_one("#main", LiveTable).row_count == 9)
        reference = await cursor_presses(pilot, ref_app, args.presses, args.gap)
    print(figures("idle reference (9 rows)", reference, None), flush=True)

    app = ProbeApp(controller)
    rss: list[tuple[float, float]] = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: app.screen.query_one("#main", LiveTable).row_count == len(keys))
        await pilot.pause(2)  # a few golden polls: every metric cell is being updated
        services = await cursor_presses(pilot, app, args.presses, args.gap)
        print(figures("Services, cursor", services, reference), flush=True)
        filtering = await filter_presses(pilot, app, args.presses // 2, args.gap)
        print(figures("Services, / filter typing", filtering, reference), flush=True)

        await pilot.press("5")
        await wait_until(pilot, lambda: app.screen.query_one("#main", LiveTable).row_count >= 40)
        delivered0, t0 = controller.delivered, time.perf_counter()
        tap = await cursor_presses(pilot, app, args.presses, args.gap)
        rate = (controller.delivered - delivered0) / (time.perf_counter() - t0)

        print(figures("Tap, cursor", tap, reference))
        print(f"tap events delivered while measuring: {rate:,.0f}/s; presses without a frame within 5 s: {app.missed + ref_app.missed}",
              flush=True)

        start = time.monotonic()
        views = ["5", "6", "2", "1", "5"]
        next_switch, next_sample, i = start, start, 0
        while (now := time.monotonic()) - start < args.duration:
            if now >= next_switch:
                await pilot.press(views[i % len(views)])
                i += 1
                next_switch = now + args.switch_every
            if now >= next_sample:
                rss.append((now - start, rss_mb()))
                next_sample = now + args.sample_every
            await pilot.pause(0.2)
        rss.append((time.monotonic() - start, rss_mb()))
    warm = [m for t, m in rss if t >= min(60.0, args.duration / 2)] or [rss[-1][1]]
    print(f"RSS over {args.duration:.0f} s of load (tap {args.tap_rate:.0f}/s, views switched every {args.switch_every:.0f} s): "
          f"start {rss[0][1]:.1f} MB, after warm-up {warm[0]:.1f} MB, end {rss[-1][1]:.1f} MB, max {max(m for _, m in rss):.1f} MB")
    per_minute = {int(t) // 60: m for t, m in rss}  # the last sample of each minute
    print("RSS at the end of each minute (MB): " + " ".join(f"{m:.0f}" for m in per_minute.values()))
    print(f"tap events delivered in total: {controller.delivered:,}")
    await inner.close()
    await ref_inner.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load while RSS is sampled (default 600)")
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--tap-rate", type=float, default=5000.0, help="tap events per second offered")
    parser.add_argument("--presses", type=int, default=200, help="key presses per measured case")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between presses")
    parser.add_argument("--switch-every", type=float, default=10.0)
    parser.add_argument("--sample-every", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
