"""How fast an export becomes a ServiceImport everywhere, and how long a full reconcile takes.

    .venv/bin/python -m benchmarks.propagation [--clusters 10 --services 500 --samples 300]
                                                [--big-clusters 100 --big-exports 1000]

Part 1 (goal p99 < 50 ms): `--clusters` clusters, each with `--services` Services already
applied; then `--samples` exports are applied one at a time, and for each we time from the
apply call to the moment a watcher of the Controller interface has seen its ServiceImport
ADDED in every other member cluster. The store is the real durable one (fsync per apply).

Part 2 (goals < 2 s, < 500 MB): `--big-clusters` clusters with `--big-exports` exports in
total (spread evenly; every one imported by every other cluster) are stored, then a fresh
controller loads the store and reconciles from nothing: the time of that load+reconcile and
the process's peak RSS, measured in a child process so part 1 does not count.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import percentile, summary, verdict


def cluster_docs(n: int) -> str:
    return "---\n".join(f"apiVersion: flomesh.io/v1alpha1\nkind: Cluster\nmetadata: {{name: c{i}}}\n" for i in range(n))


def service_doc(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "bench"},
            "spec": {"ports": [{"port": 8080}], "selector": {"app": name}}}


def export_doc(name: str, cluster: str) -> dict:
    return {"apiVersion": "flomesh.io/v1alpha1", "kind": "ServiceExport", "metadata": {"name": name, "namespace": "bench"},
            "spec": {"rules": [{"portNumber": 8080, "path": f"/{cluster}/{name}", "pathType": "Prefix"}]}}


async def export_latencies(controller, clusters: int, names: list[str], timeout_s: float = 10.0) -> list[float]:
    """ms from the apply of an export of each of `names` (by cluster c<k % clusters>, one at a
    time) until a watcher has seen its ServiceImport ADDED in all other clusters; an export not
    seen everywhere within `timeout_s` gives no sample."""
    others = clusters - 1
    pending: dict[str, tuple[float, set[str]]] = {}
    done: list[float] = []
    ready = asyncio.Event()

    async def watcher() -> None:
        async for e in controller.watch(["serviceimports"]):
            if e.type == "BOOKMARK":
                ready.set()
                continue
            name = e.object["metadata"]["name"]
            if e.type == "ADDED" and name in pending:
                start, seen = pending[name]
                seen.add(e.object["metadata"]["cluster"])
                if len(seen) == others:
                    done.append((time.perf_counter() - start) * 1000)
                    del pending[name]

    task = asyncio.create_task(watcher())
    await asyncio.wait_for(ready.wait(), 60)
    for k, name in enumerate(names):
        cluster = f"c{k % clusters}"
        pending[name] = (time.perf_counter(), set())
        await controller.apply([export_doc(name, cluster)], cluster=cluster)
        deadline = time.monotonic() + timeout_s
        while name in pending and time.monotonic() < deadline:
            await asyncio.sleep(0)
        pending.pop(name, None)
    task.cancel()
    return done


async def part1(clusters: int, services: int, samples: int) -> list[float]:
    from controller.embedded import EmbeddedController

    with tempfile.TemporaryDirectory() as d:
        c = await EmbeddedController.open(Path(d))
        await c.apply(cluster_docs(clusters))
        for i in range(clusters):
            await c.apply([service_doc(f"svc{j}") for j in range(services)], cluster=f"c{i}")
        latencies = await export_latencies(c, clusters, [f"svc{k}" for k in range(samples)])  # names nobody exports yet
        await c.close()
        return latencies


BIG_CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
from benchmarks.common import peak_rss_mb
from controller.embedded import EmbeddedController
async def main():
    t = time.perf_counter()
    c = await EmbeddedController.open(Path(sys.argv[1]))
    elapsed = time.perf_counter() - t
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak_rss_mb(), "imports": len(c.core.imports),
                      "objects": len(c.core.store.objects)}))
    await c.close()
asyncio.run(main())
"""


def reload_in_child(directory: Path) -> dict:
    """Open the store of `directory` in a fresh process: seconds, peak RSS (VmHWM), imports, objects."""
    out = subprocess.run([sys.executable, "-c", BIG_CHILD, str(directory)], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout)


async def build_big(directory: Path, clusters: int, exports: int) -> None:
    from controller.embedded import EmbeddedController

    c = await EmbeddedController.open(directory)
    await c.apply(cluster_docs(clusters))
    per = max(1, exports // clusters)
    n = 0
    for i in range(clusters):
        docs = []
        for j in range(per):
            if n >= exports:
                break
            name = f"e{n}"
            docs += [service_doc(name), export_doc(name, f"c{i}")]
            n += 1
        if docs:
            await c.apply(docs, cluster=f"c{i}")
    c.core.store.compact()
    await c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--services", type=int, default=500)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--big-clusters", type=int, default=100)
    ap.add_argument("--big-exports", type=int, default=1000)
    args = ap.parse_args()
    if args.samples > args.services:
        ap.error("--samples must not exceed --services (each sample exports a fresh service)")

    lat = asyncio.run(part1(args.clusters, args.services, args.samples))
    p99 = percentile(lat, 0.99)
    print(f"export -> ServiceImport in all {args.clusters - 1} other clusters "
          f"({args.clusters} clusters x {args.services} services): {summary(lat)}  goal p99<50ms: {verdict(p99 < 50)}")

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        asyncio.run(build_big(Path(d), args.big_clusters, args.big_exports))
        build = time.perf_counter() - t
        r = reload_in_child(Path(d))
    print(f"full reconcile of {args.big_clusters} clusters x {args.big_exports} exports ({r['imports']} ServiceImports): "
          f"{r['seconds']:.2f}s (goal <2s: {verdict(r['seconds'] < 2)}), peak RSS {r['peak_rss_mb']:.0f} MB "
          f"(goal <500MB: {verdict(r['peak_rss_mb'] < 500)}); building the store took {build:.1f}s")


if __name__ == "__main__":
    main()
