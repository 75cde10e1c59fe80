"""Tap: hands data-plane events to the subscribers that asked for them.

`publish` is synchronous and bounded: per subscriber a filter check, a token
bucket (when the filter caps the rate) and an append to a bounded queue. A
subscriber that falls behind loses events, counted; the next thing it reads
after the gap is `TapDropped(n)`. Events are shared by every subscriber: the
publisher must not change an event once published.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from proxy.events import TapDropped, TapEvent, TapFilter


class TapSubscription:
    """Async iterator of `TapEvent | TapDropped`; `close()` to leave (iteration ends)."""

    def __init__(self, hub: TapHub, flt: TapFilter, buffer: int, clock: Callable[[], float]) -> None:
        self.filter = flt
        self.dropped_total = 0
        self._hub = hub
        self._buffer = buffer
        self._clock = clock
        # events, each gap preceded by its TapDropped: at most 2 * buffer items
        self._items: deque[TapEvent | TapDropped] = deque()
        self._events = 0
        self._dropped = 0  # lost since the last TapDropped queued
        self._rate = flt.max_rps
        self._burst = max(1.0, flt.max_rps)
        self._tokens = self._burst
        self._stamp = clock()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def offer(self, event: TapEvent) -> None:
        if not self.filter.matches(event):
            return
        if self._rate:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens < 1.0:
                self.lose()
                return
            self._tokens -= 1.0
        if self._events >= self._buffer:
            self.lose()
            return
        if self._dropped:
            self._items.append(TapDropped(self._dropped))
            self._dropped = 0
        self._items.append(event)
        self._events += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def lose(self) -> None:
        self._dropped += 1
        self.dropped_total += 1

    def __aiter__(self) -> TapSubscription:
        return self

    async def __anext__(self) -> TapEvent | TapDropped:
        while not self._closed:
            if self._items:
                item = self._items.popleft()
                if isinstance(item, TapEvent):
                    self._events -= 1
                return item
            if self._dropped:
                lost = TapDropped(self._dropped)
                self._dropped = 0
                return lost
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        raise StopAsyncIteration

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._items.clear()
        self._hub._remove(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class TapHub:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.active = False  # True iff somebody subscribes: build no event otherwise
        self._clock = clock
        self._subs: tuple[TapSubscription, ...] = ()

    def publish(self, event: TapEvent) -> None:
        """Never blocks, never raises."""
        for sub in self._subs:
            try:
                sub.offer(event)
            except Exception:  # a malformed event must not break the request that published it
                sub.lose()

    def subscribe(self, flt: TapFilter, *, buffer: int = 1000) -> TapSubscription:
        if buffer < 1:
            raise ValueError(f"tap subscribe: buffer must be >= 1, got {buffer}")
        if flt.max_rps < 0:
            raise ValueError(f"tap subscribe: max_rps must be >= 0, got {flt.max_rps}")
        sub = TapSubscription(self, flt, buffer, self._clock)
        self._subs = self._subs + (sub,)
        self.active = True
        return sub

    def _remove(self, sub: TapSubscription) -> None:
        self._subs = tuple(s for s in self._subs if s is not sub)
        self.active = bool(self._subs)
