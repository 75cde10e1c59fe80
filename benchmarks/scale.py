"""An embedded federation at size: 50 clusters x 2,000 services (100,000 Services), resources only.

    .venv/bin/python -m benchmarks.scale [--clusters 50 --services 2000 --exports-per-cluster 20
                                          --samples 50 --tui-presses 40 --no-tui]

Measured, through EmbeddedController over a durable store in a temporary directory (fsync per apply):
  - apply time: the Cluster documents, then each cluster's Services as one multi-document apply;
    plus `--exports-per-cluster` ServiceExports per cluster (each imported by every other cluster);
  - reconcile time: a fresh controller (child process) loads that store and reconciles from nothing;
    its peak RSS; and this process' RSS after the applies;
  - one export everywhere: `--samples` exports of a not-yet-exported service, each timed from the apply
    call until a watcher of the Controller interface has seen its ServiceImport ADDED in every other
    cluster (goal p99 < 100 ms), against a reference measured in the same run on 3 clusters x 20 services;
  - TUI: the Services view over all rows, run headless (App.run_test) with benchmarks.tui's frame probe:
    cursor key press -> first frame showing it (goal p99 < 150 ms).
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.common import current_rss_mb, percentile, summary, verdict
from benchmarks.propagation import cluster_docs, export_doc, export_latencies, reload_in_child, service_doc

EXPORT_GOAL_MS = 100.0
TUI_GOAL_MS = 150.0

def svc_name(j: int) -> str:
    return f"svc-{j:05d}"


async def build(controller, clusters: int, services: int, exports_per_cluster: int) -> dict[str, float]:
    """Applies everything; returns seconds per phase."""
    t0 = time.perf_counter()
    await controller.apply(cluster_docs(clusters))
    t1 = time.perf_counter()
    per_cluster = []
    for i in range(clusters):
        t = time.perf_counter()
        await controller.apply([service_doc(svc_name(j)) for j in range(services)], cluster=f"c{i}")
        per_cluster.append(time.perf_counter() - t)
    t2 = time.perf_counter()
    for i in range(clusters):  # cluster i exports a slice of names nobody else exports
        names = [svc_name(i * exports_per_cluster + j) for j in range(exports_per_cluster)]
        await controller.apply([export_doc(n, f"c{i}") for n in names], cluster=f"c{i}")
    t3 = time.perf_counter()
    return {"clusters_s": t1 - t0, "services_s": t2 - t1, "per_cluster_apply_p50_s": percentile(per_cluster, 0.5),
            "per_cluster_apply_max_s": max(per_cluster), "exports_s": t3 - t2}


async def tui_presses(controller, rows: int, presses: int, wait_s: float) -> tuple[str, list[float], float | None]:
    """Cursor presses on the Services view over `rows` rows; returns (what happened, samples, seconds to show)."""
    from benchmarks.tui import SIZE, LoadedController, ProbeApp, cursor_presses
    from meshtui.tui.widgets.tables import LiveTable

    keys = sorted((o["metadata"]["cluster"], o["metadata"]["namespace"], o["metadata"]["name"])
                  for o in await controller.list("svc"))
    app = ProbeApp(LoadedController(controller, keys, 0.0))
    async with app.run_test(size=SIZE) as pilot:
        t = time.perf_counter()
        await pilot.press("2")
        deadline = time.monotonic() + wait_s
        table = None
        while time.monotonic() < deadline:
            await pilot.pause(0.2)
            table = app.screen.query_one("#main", LiveTable)
            if table.row_count >= rows:
                break
        shown = table.row_count if table is not None else 0
        if shown < rows:
            return f"the Services view showed {shown:,} of {rows:,} rows after {wait_s:.0f} s", [], None
        first = time.perf_counter() - t
        await pilot.pause(1)
        samples = await cursor_presses(pilot, app, presses, 0.05)
        return f"the Services view showed all {shown:,} rows; presses without a frame within 5 s: {app.missed}", samples, first


async def main(args: argparse.Namespace) -> None:
    from controller.embedded import EmbeddedController

    total = args.clusters * args.services
    print(f"meshtui scale benchmark: {args.clusters} clusters x {args.services:,} services = {total:,} Services, "
          f"{args.exports_per_cluster} exports per cluster ({args.clusters * args.exports_per_cluster:,} exports, each imported "
          f"by {args.clusters - 1} clusters)", flush=True)

    with tempfile.TemporaryDirectory() as ref_dir:  # reference: a small federation, same code, same run
        small = await EmbeddedController.open(Path(ref_dir))
        await build(small, 3, 20 + args.samples, 5)
        reference = await export_latencies(small, 3, [svc_name(3 * 5 + k) for k in range(args.samples)])
        await small.close()
    print(f"reference, one export everywhere (3 clusters x {20 + args.samples} services): {summary(reference)}", flush=True)

    with tempfile.TemporaryDirectory() as d:
        rss0 = current_rss_mb()
        controller = await EmbeddedController.open(Path(d))
        phases = await build(controller, args.clusters, args.services, args.exports_per_cluster)
        rss1 = current_rss_mb()
        apply_total = phases["clusters_s"] + phases["services_s"] + phases["exports_s"]
        print(f"apply: {apply_total:.1f} s in all - {args.clusters} Clusters {phases['clusters_s']:.2f} s; "
              f"{total:,} Services {phases['services_s']:.1f} s ({total / phases['services_s']:,.0f}/s; one cluster's "
              f"{args.services:,}-document apply p50 {phases['per_cluster_apply_p50_s']:.2f} s, max {phases['per_cluster_apply_max_s']:.2f} s); "
              f"exports {phases['exports_s']:.1f} s", flush=True)
        print(f"controller RSS: {rss1:.0f} MB after the applies ({rss1 - rss0:+.0f} MB over the empty process)", flush=True)

        first_free = args.clusters * args.exports_per_cluster
        lat = await export_latencies(controller, args.clusters, [svc_name(first_free + k) for k in range(args.samples)])
        p99 = percentile(lat, 0.99) if lat else float("inf")
        ref99 = percentile(reference, 0.99)
        print(f"one export -> ServiceImport in all {args.clusters - 1} other clusters: {summary(lat) if lat else 'no samples'}"
              f"  ({p99 / ref99:.1f}x the reference p99)  goal p99<{EXPORT_GOAL_MS:.0f}ms: {verdict(p99 < EXPORT_GOAL_MS)}"
              f"{'' if len(lat) == args.samples else f'  ({args.samples - len(lat)} not seen everywhere within 10 s)'}", flush=True)
        controller.core.store.compact()
        rss2 = current_rss_mb()

        if not args.no_tui:
            what, samples, first = await tui_presses(controller, total, args.tui_presses, args.tui_wait)
            print(f"TUI: {what}" + (f"; first full view after {first:.1f} s" if first else ""), flush=True)
            if samples:
                ms = [s * 1000 for s in samples]
                print(f"TUI key press -> frame on {total:,} rows: {summary(ms)}  goal p99<{TUI_GOAL_MS:.0f}ms: "
                      f"{verdict(percentile(ms, 0.99) < TUI_GOAL_MS)}", flush=True)
            else:
                print(f"TUI key press -> frame on {total:,} rows: not measured  goal p99<{TUI_GOAL_MS:.0f}ms: {verdict(False)}")
            print(f"process RSS with the TUI: {current_rss_mb():.0f} MB (controller alone: {rss2:.0f} MB)", flush=True)
        await controller.close()

        child = reload_in_child(Path(d))
        print(f"reconcile from the stored state (fresh process): {child['seconds']:.1f} s for {child['objects']:,} objects, "
              f"{child['imports']:,} ServiceImports; peak RSS {child['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--exports-per-cluster", type=int, default=20)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--tui-presses", type=int, default=40)
    parser.add_argument("--tui-wait", type=float, default=180.0, help="seconds to wait for the Services view to fill")
    parser.add_argument("--no-tui", action="store_true")
    a = parser.parse_args()
    if (a.exports_per_cluster + 1) * a.clusters + a.samples > a.services * a.clusters:
        parser.error("not enough services for the exports and samples")
    asyncio.run(main(a))
