"""Soak: the default demo scenario under load for a while; is anything growing?

    .venv/bin/python -m benchmarks.soak [--duration 600] [--rps 20] [--sample-every 5] [--warmup 0.25]
                                        [--trace-controller [tracemalloc|heap]]

Starts `meshtui demo --no-tui` (scenario `default`, its own generated traffic) on a temporary state dir,
adds its own load (GET http://web.emojivoto:8080/ from cluster east, a service with no injected errors)
and a tap subscriber (`meshtui tap -o json`), and samples RSS and open file descriptors of every process
(the demo's controller, each proxy and workload replica, the tap client). After the warm-up (a fraction of
the run) it prints each process' growth from the first warm sample to the mean of the last three; goals:
under 5% growth, zero failed requests. asyncio task counts are sampled only in the controller, with
--trace-controller (neither the controller's /metrics nor the proxies' admin /metrics expose them).
No TUI is attached.

`--trace-controller [tracemalloc|heap]` has the controller dump its heap figures (on SIGUSR1) at the end of
the warm-up, at each quarter of the measured part and at the end: asyncio tasks and threads, glibc malloc
(in use vs free inside the heap), pymalloc arenas, its RSS split by mapping, the live object types that grew;
with `tracemalloc` (the default) it also runs under tracemalloc and prints the allocation sites that grew
most (snapshot.compare_to(..., "lineno")) with their size at each dump, so a site still growing at the end
(a leak) shows apart from one that levelled off (warm-up). tracemalloc slows the controller and adds to its
RSS: compare growth only between runs of the same mode; `heap` leaves the RSS figures comparable.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp

from benchmarks.common import current_rss_mb, verdict
from controller.demo.client import Unavailable, send
from controller.federation.processes import find_federation_processes
from controller.settings import random_loopback_base

CLI = [sys.executable, "-c", "import sys; from meshtui.cli.main import main; sys.exit(main())"]
GROWTH_GOAL = 0.05
TOP_SITES = 15

# Runs in the traced controller: on SIGUSR1, write into $SOAK_TRACE_DIR <n>.json (n = 0, 1, ...): the
# glibc malloc and pymalloc figures, live objects per type and asyncio tasks; and <n>.snapshot, a
# tracemalloc snapshot, when $SOAK_TRACEMALLOC is set. On SIGUSR2, give glibc's free heap pages back
# (malloc_trim) and write $SOAK_TRACE_DIR/trimmed.
TRACED_CONTROLLER = """
import asyncio, collections, ctypes, gc, json, os, re, signal, sys, threading, tracemalloc
if os.environ.get("SOAK_TRACEMALLOC"):
    tracemalloc.start(1)
class MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
def pymalloc_stats(path):
    saved = os.dup(2)
    with open(path, "w") as f:
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    text = open(path).read()
    os.remove(path)
    if "# arenas allocated current" not in text:
        return None  # tracemalloc's hooks hide pymalloc from _debugmallocstats
    pick = lambda name: int(re.search(name + r"\s*=\s*([\d,]+)", text).group(1).replace(",", ""))
    return {"arenas": pick("# arenas allocated current"), "allocated_blocks_bytes": pick("# bytes in allocated blocks"),
            "free_pools_bytes": pick("# bytes in available blocks") + pick("# bytes lost to pool headers")}
def dump(signum, frame):
    out = os.environ["SOAK_TRACE_DIR"]
    n = sum(name.endswith(".json") for name in os.listdir(out))
    gc.collect()
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(f"{out}/{n}.snapshot")
    m = libc.mallinfo2()
    counts = {"traced_mb": tracemalloc.get_traced_memory()[0] / 2**20, "tasks": len(asyncio.all_tasks()),
              "threads": threading.active_count(), "pymalloc": pymalloc_stats(f"{out}/{n}.pymalloc"),
              "malloc": {"heap_mb": (m.arena + m.hblkhd) / 2**20, "in_use_mb": (m.uordblks + m.hblkhd) / 2**20,
                         "free_mb": m.fordblks / 2**20},
              "objects": collections.Counter(type(o).__qualname__ for o in gc.get_objects())}
    with open(f"{out}/{n}.tmp", "w") as f:
        json.dump(counts, f)
    os.rename(f"{out}/{n}.tmp", f"{out}/{n}.json")
def trim(signum, frame):
    libc.malloc_trim(0)
    open(os.environ["SOAK_TRACE_DIR"] + "/trimmed", "w").close()
signal.signal(signal.SIGUSR1, dump)
signal.signal(signal.SIGUSR2, trim)
from meshtui.cli.main import main
sys.exit(main())
"""


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def label(pid: int) -> str:
    """What a process is, from its argv: controller, tap client, `proxy.main cluster=east`, ..."""
    try:
        argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0") if a]
    except OSError:
        return str(pid)
    if "demo" in argv:
        return f"controller (meshtui demo) [{pid}]"
    if "tap" in argv:
        return f"tap subscriber (meshtui tap) [{pid}]"
    module = argv[argv.index("-m") + 1] if "-m" in argv and argv.index("-m") + 1 < len(argv) else Path(argv[-1]).name
    cluster = f" cluster={argv[argv.index('--cluster') + 1]}" if "--cluster" in argv[:-1] else ""
    return f"{module}{cluster} [{pid}]"


def start_demo(state: Path, log: Path, trace: ControllerTrace | None) -> subprocess.Popen:
    cli = [sys.executable, "-c", TRACED_CONTROLLER] if trace else CLI
    env = None
    if trace is not None:
        env = {**os.environ, "SOAK_TRACE_DIR": str(trace.folder)} | ({"SOAK_TRACEMALLOC": "1"} if trace.tracing else {})
    proc = subprocess.Popen([*cli, "demo", "--no-tui", "--scenario", "default", "--state", str(state),
                             "--loopback-base", random_loopback_base()],
                            stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True, start_new_session=True, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip() == "ready":
            return proc
    proc.kill()
    raise SystemExit(f"the demo did not become ready; see {log}:\n{log.read_text()[-2000:]}")


def outbound_of(state: Path, cluster: str) -> str:
    out = subprocess.run([*CLI, "--state", str(state), "get", "clusters", "-o", "json"], capture_output=True, text=True, check=True)
    items = {c["metadata"]["name"]: c for c in json.loads(out.stdout)["items"]}
    return items[cluster]["status"]["outbound"]["address"]


class TapReader:
    def __init__(self, state: Path):
        self.proc = subprocess.Popen([*CLI, "--state", str(state), "tap", "-o", "json"], stdout=subprocess.PIPE, text=True)
        self.events = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for _ in self.proc.stdout:
            self.events += 1


async def load(outbound: str, rps: float, stop: asyncio.Event, answers: Counter) -> None:
    async with aiohttp.ClientSession() as session:
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                a = await send(session, outbound, "http://web.emojivoto:8080/")
                answers[a.status] += 1
            except Unavailable as e:
                answers[f"error: {e}"] += 1
            next_at += 1 / rps
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


def rss_by_mapping(pid: int) -> dict[str, float]:
    """The process' RSS (MB) split by kind of mapping: the main malloc heap, anonymous mappings of
    64 MB reservations (glibc's per-thread malloc arenas), other anonymous mappings (pymalloc arenas,
    large mallocs, thread stacks), and files."""
    out: Counter = Counter()
    kind = "files"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                name = head[5] if len(head) > 5 else ""
                kind = ("[heap]" if name == "[heap]" else "files" if name.startswith("/") else
                        "thread arenas" if hi - lo >= 32 * 2**20 or name == "" and (lo & (64 * 2**20 - 1)) == 0 else
                        "other anon" if name == "" else name)
            elif head[0] == "Rss:":
                out[kind] += int(head[1]) / 1024
    return dict(out)


class ControllerTrace:
    """The traced controller's dumps (see TRACED_CONTROLLER), taken at the moments `due` (seconds into the run)."""

    def __init__(self, folder: Path, due: list[float], tracing: bool):
        self.folder = folder
        self.due = due
        self.tracing = tracing
        self.snapshots: list[tracemalloc.Snapshot] = []
        self.counts: list[dict] = []
        self.mappings: list[dict[str, float]] = []
        self.trimmed: tuple[float, float] | None = None  # RSS (MB) before and after malloc_trim at the end

    async def take_if_due(self, pid: int, elapsed: float) -> None:
        if len(self.counts) < len(self.due) and elapsed >= self.due[len(self.counts)]:
            await self.take(pid)

    async def take(self, pid: int) -> None:
        n = len(self.counts)
        os.kill(pid, signal.SIGUSR1)
        done = self.folder / f"{n}.json"
        deadline = time.monotonic() + 120
        while not done.exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"the traced controller wrote no dump {n} within 120 s")
            await asyncio.sleep(0.5)
        self.counts.append(json.loads(done.read_text()))
        self.mappings.append(rss_by_mapping(pid))
        if self.tracing:
            self.snapshots.append(tracemalloc.Snapshot.load(str(self.folder / f"{n}.snapshot")))

    async def trim(self, pid: int) -> None:
        before = current_rss_mb(pid)
        os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + 60
        while not (self.folder / "trimmed").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        self.trimmed = (before, current_rss_mb(pid))

    def report(self) -> None:
        if len(self.counts) < 2:
            print(f"controller trace: only {len(self.counts)} dump(s); nothing to compare")
            return
        series = lambda values, fmt="{:.1f}": " -> ".join(fmt.format(v) for v in values)
        print(f"controller trace, at {series(self.due[:len(self.counts)], '{:.0f}')} s:")
        print(f"  asyncio tasks {series((c['tasks'] for c in self.counts), '{}')}; threads "
              f"{series((c['threads'] for c in self.counts), '{}')}")
        print(f"  glibc malloc: heap {series(c['malloc']['heap_mb'] for c in self.counts)} MB, in use "
              f"{series(c['malloc']['in_use_mb'] for c in self.counts)} MB, free inside "
              f"{series(c['malloc']['free_mb'] for c in self.counts)} MB")
        if all(c["pymalloc"] for c in self.counts):
            print(f"  pymalloc: arenas {series((c['pymalloc']['arenas'] for c in self.counts), '{}')}, in allocated blocks "
                  f"{series(c['pymalloc']['allocated_blocks_bytes'] / 2**20 for c in self.counts)} MB, free in pools "
                  f"{series(c['pymalloc']['free_pools_bytes'] / 2**20 for c in self.counts)} MB")
        kinds = sorted({k for m in self.mappings for k in m}, key=lambda k: -self.mappings[-1].get(k, 0))
        print("  RSS by mapping: " + "; ".join(f"{k} {series(m.get(k, 0.0) for m in self.mappings)} MB" for k in kinds))
        if self.trimmed:
            print(f"  RSS after the last dump {self.trimmed[0]:.1f} MB, after malloc_trim(0) {self.trimmed[1]:.1f} MB")
        objs = [Counter(c["objects"]) for c in self.counts]
        growth = sorted(((objs[-1][k] - objs[0][k], k) for k in objs[-1]), reverse=True)[:10]
        print("  live objects that grew most: "
              + "; ".join(f"{k} {series((o[k] for o in objs), '{}')}" for d, k in growth if d > 0))
        if not self.snapshots:
            return
        first, last = self.snapshots[0], self.snapshots[-1]
        print(f"  tracemalloc: traced Python memory {series(c['traced_mb'] for c in self.counts)} MB; "
              f"top {TOP_SITES} growing allocation sites (KB at each dump; blocks first -> last):")
        sizes = [{s.traceback: s for s in snap.statistics("lineno")} for snap in self.snapshots]
        for stat in last.compare_to(first, "lineno")[:TOP_SITES]:
            kb = series((s[stat.traceback].size / 1024 if stat.traceback in s else 0.0 for s in sizes), "{:8.1f}")
            frame = stat.traceback[0]
            print(f"  {stat.size_diff / 1024:+9.1f} KB  {kb}  blocks {stat.count - stat.count_diff} -> {stat.count}"
                  f"  {frame.filename}:{frame.lineno}")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        state, log = Path(d) / "state", Path(d) / "demo.log"
        trace: ControllerTrace | None = None
        if args.trace_controller:
            (Path(d) / "trace").mkdir()
            warm_from = args.duration * args.warmup
            quarters = [warm_from + k * (args.duration - warm_from) / 4 for k in range(4)]
            trace = ControllerTrace(Path(d) / "trace", quarters,
                                    args.trace_controller == "tracemalloc")
        demo = start_demo(state, log, trace)
        tap: TapReader | None = None
        samples: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
        answers: Counter = Counter()
        try:
            tap = TapReader(state)
            stop = asyncio.Event()
            loader = asyncio.create_task(load(outbound_of(state, "east"), args.rps, stop, answers))
            start = time.monotonic()
            while (now := time.monotonic()) - start < args.duration:
                for pid in [demo.pid, tap.proc.pid, *find_federation_processes(state)]:
                    samples[label(pid)].append((now - start, current_rss_mb(pid), fds(pid)))
                samples["(this benchmark)"].append((now - start, current_rss_mb(), fds(os.getpid())))
                if trace is not None:
                    await trace.take_if_due(demo.pid, now - start)
                await asyncio.sleep(args.sample_every)
            if trace is not None:
                trace.due.append(time.monotonic() - start)
                await trace.take(demo.pid)
                await trace.trim(demo.pid)
            stop.set()
            await loader
        finally:
            if tap is not None:
                tap.proc.terminate()
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
            for pid in find_federation_processes(state):
                os.killpg(pid, signal.SIGKILL)

    warm_from = args.duration * args.warmup
    print(f"meshtui soak: default scenario for {args.duration:.0f} s, +{args.rps:g} rps of our own GETs, one tap subscriber; "
          f"growth measured after {warm_from:.0f} s of warm-up")
    worst = 0.0
    for name, rows in sorted(samples.items()):
        warm = [r for r in rows if r[0] >= warm_from]
        if len(warm) < 4:
            print(f"  {name:<48} too few samples after warm-up ({len(warm)})")
            continue
        tail = warm[-3:]
        rss0, rss1 = warm[0][1], sum(r[1] for r in tail) / 3
        fd0, fd1 = warm[0][2], max(r[2] for r in tail)
        growth = (rss1 - rss0) / rss0 if rss0 else 0.0
        worst = max(worst, growth)
        print(f"  {name:<48} RSS {rss0:7.1f} -> {rss1:7.1f} MB ({growth * 100:+5.1f}%)   fds {fd0:4d} -> {fd1:4d}")
    for name, rows in samples.items():
        if name.startswith("controller"):
            step = max(1, len(rows) // 10)
            print("controller RSS over the run: " + ", ".join(f"{t:.0f} s {rss:.1f}" for t, rss, _ in rows[::step]) + " MB")
    failed = sum(n for k, n in answers.items() if k != 200)
    print(f"our GETs: {sum(answers.values()):,} sent, {failed} failed {dict(answers) if failed else ''}")
    print(f"tap events received: {tap.events if tap else 0:,}")
    print(f"worst RSS growth after warm-up: {worst * 100:+.1f}%  goal <5%: {verdict(worst < GROWTH_GOAL)}; "
          f"zero failed requests: {verdict(failed == 0)}")
    if trace is not None:
        trace.report()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.25, help="fraction of the run before growth is measured")
    parser.add_argument("--trace-controller", nargs="?", choices=("tracemalloc", "heap"), const="tracemalloc",
                        help="dump the controller's heap figures at the end of the warm-up, at each quarter of the "
                             "rest and at the end; with tracemalloc (the default) also its growing allocation sites")
    asyncio.run(main(parser.parse_args()))
