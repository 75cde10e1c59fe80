"""Soak: the default demo scenario under load for a while; is anything growing?

    .venv/bin/python -m benchmarks.soak [--duration 600] [--rps 20] [--sample-every 5] [--warmup 0.25]

Starts `meshtui demo --no-tui` (scenario `default`, its own generated traffic) on a temporary state dir,
adds its own load (GET http://web.emojivoto:8080/ from cluster east, a service with no injected errors)
and a tap subscriber (`meshtui tap -o json`), and samples RSS and open file descriptors of every process
(the demo's controller, each proxy and workload replica, the tap client). After the warm-up (a fraction of
the run) it prints each process' growth from the first warm sample to the mean of the last three; goals:
under 5% growth, zero failed requests. asyncio task counts are not sampled: no process exposes them
(neither the controller's /metrics nor the proxies' admin /metrics). No TUI is attached.
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
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp

from benchmarks.common import current_rss_mb, verdict
from controller.demo.client import Unavailable, send
from controller.federation.processes import find_federation_processes
from controller.settings import random_loopback_base

CLI = [sys.executable, "-c", "import sys; from meshtui.cli.main import main; sys.exit(main())"]
GROWTH_GOAL = 0.05


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


def start_demo(state: Path, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([*CLI, "demo", "--no-tui", "--scenario", "default", "--state", str(state),
                             "--loopback-base", random_loopback_base()],
                            stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True, start_new_session=True)
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


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        state, log = Path(d) / "state", Path(d) / "demo.log"
        demo = start_demo(state, log)
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
                await asyncio.sleep(args.sample_every)
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
    failed = sum(n for k, n in answers.items() if k != 200)
    print(f"our GETs: {sum(answers.values()):,} sent, {failed} failed {dict(answers) if failed else ''}")
    print(f"tap events received: {tap.events if tap else 0:,}")
    print(f"worst RSS growth after warm-up: {worst * 100:+.1f}%  goal <5%: {verdict(worst < GROWTH_GOAL)}; "
          f"zero failed requests: {verdict(failed == 0)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.25, help="fraction of the run before growth is measured")
    asyncio.run(main(parser.parse_args()))
