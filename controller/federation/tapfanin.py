"""One tap stream out of every proxy's: subscribes to each proxy's admin /tap with the filter
in the compact format (`CompactLines` rebuilds its events), following proxies that appear,
restart or go away, and merges the events into one bounded buffer. The readers never wait
for the consumer: when the buffer is full an event is dropped and counted, and the consumer
receives `TapDropped(n)` before its next event."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable

import aiohttp
import orjson

from proxy.events import EVENT_KINDS, TapDropped, TapEvent, TapFilter
from proxy.tap import ANSWERED, WHOLE_REQUEST, answered_phases

BUFFER = 1000
FOLLOW_PERIOD_S = 0.5
RECONNECT_S = 0.5
# the longest compact line read: a line of ANSWERED_BATCH answered requests whose paths are
# each as long as a request head may be (16 KiB)
TAP_LINE_MAX = 8 << 20


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
    """A line of a proxy's tap stream in the json format: one event (or gap) a line."""
    try:
        data = orjson.loads(line)
    except ValueError:
        return None
    return _item(data) if isinstance(data, dict) else None


def _item(data: dict) -> TapEvent | TapDropped | None:
    if data.get("kind") == "dropped":
        return TapDropped(int(data.get("dropped", 0)))
    try:
        return TapEvent(**data)
    except TypeError:
        return None


_ROUTES_MAX = 100_000


class CompactLines:
    """The lines of one proxy's compact tap stream (proxy/tap.py CompactEncoder) as events:
    it remembers the routes the stream defined, and rebuilds each event from its route's
    fields and its own array (three events from a whole request's array)."""

    def __init__(self) -> None:
        self._routes: dict[int, dict] = {}

    def __call__(self, line: bytes) -> list[TapEvent | TapDropped]:
        """The events of `line`; none for a route's definition or what cannot be read."""
        try:
            data = orjson.loads(line)
        except ValueError:
            return []
        if isinstance(data, list):
            if data and isinstance(data[0], list):  # answered requests' arrays (ANSWERED)
                return [e for row in data for e in self._events(row)]
            return self._events(data)
        if not isinstance(data, dict):
            return []
        number = data.pop("route", None)
        if number is None:
            item = _item(data)
            return [item] if item is not None else []
        if len(self._routes) >= _ROUTES_MAX:
            self._routes.clear()
        self._routes[number] = data
        return []

    def _events(self, data: list) -> list[TapEvent | TapDropped]:
        try:
            route, number, kind = data[:3]
            shared = self._routes[route]
            common = {**shared, "id": f"{shared['id']}{number}"}
            if kind == WHOLE_REQUEST or kind == ANSWERED:  # a request's three events
                ts, method, path, *rest = data[3:]
                head, end = (rest[:3], rest[3:]) if kind == WHOLE_REQUEST else answered_phases(ts, *rest)
                head_status, head_latency_ms, head_ts = head
                status, latency_ms, duration_ms, nbytes, error, grpc_status, end_ts = end
                request = {**common, "method": method, "path": path}
                return [TapEvent(**request, kind="request_init", ts=ts),
                        TapEvent(**request, kind="response_init", status=head_status, latency_ms=head_latency_ms,
                                 ts=head_ts),
                        TapEvent(**request, kind="response_end", status=status, latency_ms=latency_ms,
                                 duration_ms=duration_ms, bytes=nbytes, ts=end_ts, error=error,
                                 grpc_status=grpc_status)]
            status, latency_ms, duration_ms, nbytes, ts, method, path, error, grpc_status = data[3:]
            if kind < 0:
                return []
            return [TapEvent(**common, kind=EVENT_KINDS[kind], method=method, path=path, status=status,
                             latency_ms=latency_ms, duration_ms=duration_ms, bytes=nbytes, ts=ts, error=error,
                             grpc_status=grpc_status)]
        except (ValueError, TypeError, KeyError, IndexError):
            return []


async def _read(session: aiohttp.ClientSession, admin: str, flt: TapFilter, merge: TapMerge) -> None:
    url = f"http://{admin}/tap"
    while True:
        try:
            async with session.get(url, params={**flt.to_query(), "format": "compact"}, read_bufsize=TAP_LINE_MAX // 2,
                                   timeout=aiohttp.ClientTimeout(total=None, sock_connect=2.0)) as resp:
                if resp.status == 200:
                    parse = CompactLines()
                    async for line in resp.content:
                        for item in parse(line):
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
