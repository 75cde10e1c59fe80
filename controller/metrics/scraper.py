"""Scrapes every proxy's /metrics once a second and answers golden metrics from the history."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import aiohttp

from controller.interface import GoldenRow

from .exposition import ExpositionError, ExpositionParser
from .flows import snapshot
from .golden import golden_rows, window_seconds
from .window import ScrapeHistory

log = logging.getLogger(__name__)

SCRAPE_PERIOD_S = 1.0
SCRAPE_TIMEOUT_S = 0.8


class MetricsScraper:
    def __init__(self, session: aiohttp.ClientSession, targets: Callable[[], dict[str, str]], *,
                 period_s: float = SCRAPE_PERIOD_S) -> None:
        """`targets()`: observing cluster -> its proxy's admin address (host:port)."""
        self.session = session
        self.targets = targets
        self.period_s = period_s
        self.histories: dict[str, ScrapeHistory] = {}
        self.errors: dict[str, str] = {}  # cluster -> why its last scrape failed
        self._parser = ExpositionParser()

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await self.scrape_once()
            await asyncio.sleep(max(0.0, self.period_s - (time.monotonic() - started)))

    async def scrape_once(self) -> None:
        targets = self.targets()
        for gone in set(self.histories) - set(targets):
            del self.histories[gone]
            self.errors.pop(gone, None)
        await asyncio.gather(*(self._scrape(c, a) for c, a in targets.items()))

    async def _scrape(self, cluster: str, admin: str) -> None:
        url = f"http://{admin}/metrics"
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)) as resp:
                if resp.status != 200:
                    raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status, message=resp.reason or "")
                text = await resp.text()
            snap = snapshot(self._parser.samples(text, url))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ExpositionError) as e:
            self.errors[cluster] = f"{url}: {e or type(e).__name__}"
            return
        self.errors.pop(cluster, None)
        self.histories.setdefault(cluster, ScrapeHistory()).add(time.monotonic(), snap)

    def golden(self, window: str) -> list[GoldenRow]:
        seconds = window_seconds(window)
        return golden_rows(((c, h.window(seconds)) for c, h in sorted(self.histories.items())), window)
