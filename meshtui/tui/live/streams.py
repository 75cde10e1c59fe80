"""The long-lived streams: one watch feeding the resource cache, and tap subscriptions feeding
traffic buffers; both restart with backoff when they fail (attach mode loses its connection, the
controller restarts)."""
from __future__ import annotations

import asyncio
from typing import Callable

from controller.interface import Controller, TapDropped, TapEvent, TapFilter

from .cache import ResourceCache


class Backoff:
    def __init__(self, first: float = 0.25, factor: float = 2.0, cap: float = 10.0) -> None:
        self.first, self.factor, self.cap = first, factor, cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.first


async def follow_watch(controller: Controller, cache: ResourceCache, set_state: Callable[[str], None]) -> None:
    """Runs until cancelled. States: `syncing`, `live`, `reconnecting… (<why>)`."""
    backoff = Backoff()
    while True:
        try:
            cache.begin_relist()
            set_state("syncing")
            async for event in controller.watch():
                cache.apply(event)
                if event.type == "BOOKMARK":
                    set_state("live")
                    backoff.reset()
            raise ConnectionError("watch stream ended")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # any failure of the stream: show it, wait, list and watch again
            delay = backoff.next()
            set_state(f"reconnecting… ({type(e).__name__}: {e}; retry in {delay:.1f}s)")
            await asyncio.sleep(delay)


async def follow_tap(controller: Controller, flt: TapFilter, sink: Callable[[TapEvent | TapDropped], None],
                     set_state: Callable[[str], None]) -> None:
    """Feeds every tap event into `sink` (cheap, bounded buffers) until cancelled; reconnects
    with backoff when the stream fails."""
    backoff = Backoff()
    while True:
        try:
            set_state("streaming")
            async for item in controller.tap(flt):
                sink(item)
                backoff.reset()
            raise ConnectionError("tap stream ended")
        except asyncio.CancelledError:
            raise
        except Exception as e:
            delay = backoff.next()
            set_state(f"reconnecting… ({type(e).__name__}: {e})")
            await asyncio.sleep(delay)
