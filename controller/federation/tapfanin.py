"""One tap stream out of every proxy's: subscribes to each proxy's admin /tap with the filter
(following proxies that appear, restart or go away) and merges the events into one bounded
buffer. The readers never wait for the consumer: when the buffer is full an event is dropped
and counted, and the consumer receives `TapDropped(n)` before its next event."""
from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator, Callable

import aiohttp

from proxy.events import TapDropped, TapEvent, TapFilter

BUFFER = 1000
FOLLOW_PERIOD_S = 0.5
RECONNECT_S = 0.5


class TapMerge:
    """The bounded buffer the readers feed (pure: no I/O)."""

    def __init__(self, buffer: int = BUFFER) -> None:
        self._queue: asyncio.Queue[TapEvent | TapDropped] = asyncio.Queue(buffer)
        self.dropped = 0

    def offer(self, item: TapEvent | TapDropped) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += item.dropped if isinstance(item, TapDropped) else 1

    async def next(self) -> TapEvent | TapDropped:
        if self.dropped:
            n, self.dropped = self.dropped, 0
            return TapDropped(n)
        return await self._queue.get()


def parse_line(line: bytes) -> TapEvent | TapDropped | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("kind") == "dropped":
        return TapDropped(int(data.get("dropped", 0)))
    try:
        return TapEvent(**data)
    except TypeError:
        return None


async def _read(session: aiohttp.ClientSession, admin: str, flt: TapFilter, merge: TapMerge) -> None:
    url = f"http://{admin}/tap"
    while True:
        try:
            async with session.get(url, params=flt.to_query(),
                                   timeout=aiohttp.ClientTimeout(total=None, sock_connect=2.0)) as resp:
                if resp.status == 200:
                    async for line in resp.content:
                        item = parse_line(line)
                        if item is not None:
                            merge.offer(item)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            pass  # the proxy restarted or went away, or sent an over-long line: subscribe again
        await asyncio.sleep(RECONNECT_S)


async def fan_in(session: aiohttp.ClientSession, sources: Callable[[], dict[str, str]], flt: TapFilter, *,
                 buffer: int = BUFFER) -> AsyncIterator[TapEvent | TapDropped]:
    """`sources()`: cluster -> admin address of each proxy that is up now."""
    merge = TapMerge(buffer)
    readers: dict[tuple[str, str], asyncio.Task] = {}

    async def follow() -> None:
        while True:
            want = set(sources().items())
            for key in set(readers) - want:
                readers.pop(key).cancel()
            for key in want - set(readers):
                readers[key] = asyncio.create_task(_read(session, key[1], flt, merge), name=f"tap {key[0]}")
            await asyncio.sleep(FOLLOW_PERIOD_S)

    follower = asyncio.create_task(follow(), name="tap follower")
    try:
        while True:
            yield await merge.next()
    finally:
        follower.cancel()
        for task in readers.values():
            task.cancel()
