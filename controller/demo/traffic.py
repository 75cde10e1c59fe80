"""The demo's generated traffic: each scenario flow sends requests from a client inside its
cluster (through that cluster's outbound proxy) at its rate, with Poisson arrivals, forever.
Answers and failures are not kept: the proxies' metrics and tap show them."""
from __future__ import annotations

import asyncio
import random
from typing import Callable

import aiohttp

from controller.errors import MeshError

from .client import send
from .scenarios import TrafficFlow

MAX_IN_FLIGHT = 20  # per flow; beyond it a request is skipped rather than queued


class GeneratedTraffic:
    def __init__(self, session: aiohttp.ClientSession, flows: tuple[TrafficFlow, ...],
                 outbound_of: Callable[[str], str | None], *, rng: random.Random | None = None) -> None:
        """`outbound_of(cluster)`: its outbound proxy's address, None while it has none."""
        self.session = session
        self.flows = flows
        self.outbound_of = outbound_of
        self.rng = rng or random.Random()
        self.sent = 0
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(f), name=f"traffic {f.cluster} {f.url}") for f in self.flows]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self, flow: TrafficFlow) -> None:
        in_flight: set[asyncio.Task] = set()
        try:
            while True:
                await asyncio.sleep(self.rng.expovariate(flow.rps))
                outbound = self.outbound_of(flow.cluster)
                if outbound is None or len(in_flight) >= MAX_IN_FLIGHT:
                    continue
                task = asyncio.create_task(self._one(outbound, flow.url))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        finally:
            for t in in_flight:
                t.cancel()

    async def _one(self, outbound: str, url: str) -> None:
        self.sent += 1
        try:
            await send(self.session, outbound, url)
        except MeshError:
            pass  # a failed request is part of the picture; the proxies count it
