"""`meshtui demo --no-tui --scenario fsm-blog` SIGKILLed under continuous load: the proxies keep serving the
last routes (zero failed requests), a new controller finds the state intact, adopts the proxies and pushes
the next change to them."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from controller.demo.client import Unavailable, send
from controller.settings import random_loopback_base
from tests.running import kill_leftovers
from tests.e2e.conftest import Demo, meshtui, start_demo, stop_demo
from tests.support import FIXTURES

pytestmark = pytest.mark.timeout(120)
URL = "http://httpbin.httpbin:8080/"
HI = "Hi, I am from {} and controlled by mesh!"
OUTAGE_S = 6.0 if os.environ.get("MESHTUI_LONG_TESTS") == "1" else 1.5


class Load:
    """GETs through one outbound proxy, one after another from 8 workers, until stopped."""

    def __init__(self, outbound: str):
        self.outbound = outbound
        self.answers: Counter = Counter()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> "Load":
        self.session = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(8)]
        return self

    async def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                a = await send(self.session, self.outbound, URL)
                self.answers[(a.status, a.body.decode().strip())] += 1
            except Unavailable as e:
                self.answers[("error", str(e))] += 1
            await asyncio.sleep(0.01)

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self.session.close()


def cli(state: Path, *args: str, text: str | None = None) -> str:
    r = meshtui(state, *args, input=text)
    assert r.returncode == 0, r.stderr
    return r.stdout


def resources(state: Path) -> dict:
    out = {}
    for kind in ("clusters", "svcexp", "gtp", "svc", "workloads"):
        for o in json.loads(cli(state, "get", kind, "-A", "-o", "json"))["items"]:
            m = o["metadata"]
            out[(o["kind"], m.get("cluster", ""), m.get("namespace", ""), m["name"])] = (m.get("resourceVersion"), o.get("spec"))
    return out


async def test_proxies_serve_through_a_controller_kill_and_resync_after_restart(tmp_path):
    state, base = tmp_path / "state", random_loopback_base()
    demos: list[Demo] = []
    try:
        demos.append(await asyncio.to_thread(start_demo, state, "fsm-blog", base))
        await asyncio.to_thread(cli, state, "apply", "--cluster", "cluster-2", "-n", "httpbin", "-f",
                                str(FIXTURES / "fsm_gtp_failover.yaml"))
        clusters = {c["metadata"]["name"]: c for c in json.loads(await asyncio.to_thread(cli, state, "get", "clusters", "-o", "json"))["items"]}
        outbound = clusters["cluster-2"]["status"]["outbound"]["address"]
        before = await asyncio.to_thread(resources, state)
        async with Load(outbound) as load:
            await asyncio.sleep(0.5)
            os.kill(demos[0].proc.pid, signal.SIGKILL)
            await asyncio.to_thread(demos[0].proc.wait)
            during_outage = sum(load.answers.values())
            await asyncio.sleep(OUTAGE_S)
            during_outage = sum(load.answers.values()) - during_outage
            demos.append(await asyncio.to_thread(start_demo, state, "fsm-blog", base))
            await asyncio.sleep(0.5)
        assert set(load.answers) == {(200, HI.format("cluster-1")), (200, HI.format("cluster-3"))}, load.answers
        assert during_outage >= 20, load.answers
        assert "resumed" in demos[1].summary
        assert await asyncio.to_thread(resources, state) == before

        # the restarted controller pushes a change to the adopted proxies: a local httpbin takes all traffic
        await asyncio.to_thread(cli, state, "apply", "--cluster", "cluster-2", "-f", str(FIXTURES / "fsm_httpbin_cluster-2.yaml"))
        async with aiohttp.ClientSession() as session:
            deadline, last = time.monotonic() + 20, []
            while time.monotonic() < deadline:
                last = [(await send(session, outbound, URL)).body.decode().strip() for _ in range(5)]
                if set(last) == {"Hi, I am from cluster-2!"}:
                    break
                await asyncio.sleep(0.2)
            assert set(last) == {"Hi, I am from cluster-2!"}, last
    finally:
        for demo in demos:
            await asyncio.to_thread(stop_demo, demo)
        left = kill_leftovers(state)
    assert left == [], f"processes left running: {left}"
