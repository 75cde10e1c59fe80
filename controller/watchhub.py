"""Fan-out of resource change events to watchers, with a short history for resuming."""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import AsyncIterator

from controller.errors import Gone
from controller.interface import WatchEvent

HISTORY = 10_000
HISTORY_SECONDS = 120.0  # a watcher may resume from a revision this recent; older asks get Gone (list again)
QUEUE_LIMIT = 50_000


class _Watcher:
    __slots__ = ("queue", "kinds", "cluster", "overflowed")

    def __init__(self, kinds: set[str] | None, cluster: str | None):
        self.queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self.kinds = kinds
        self.cluster = cluster
        self.overflowed = False

    def wants(self, obj: dict) -> bool:
        return (self.kinds is None or obj["kind"] in self.kinds) and (
            self.cluster is None or obj["metadata"].get("cluster") in (None, self.cluster) or obj["kind"] == "Cluster"
        )


class WatchHub:
    def __init__(self) -> None:
        self._watchers: set[_Watcher] = set()
        self._history: deque[tuple[int, WatchEvent]] = deque(maxlen=HISTORY)
        self._stamps: deque[float] = deque(maxlen=HISTORY)
        self.oldest_kept = 0  # revisions up to this one are no longer kept

    def publish(self, revision: int, event: WatchEvent) -> None:
        now = time.monotonic()
        while self._stamps and (now - self._stamps[0] > HISTORY_SECONDS or len(self._stamps) == HISTORY):
            self._stamps.popleft()
            self.oldest_kept = self._history.popleft()[0]
        self._history.append((revision, event))
        self._stamps.append(now)
        for w in self._watchers:
            if w.overflowed or not w.wants(event.object):
                continue
            if w.queue.qsize() >= QUEUE_LIMIT:
                w.overflowed = True
            w.queue.put_nowait(event)

    async def stream(self, kinds: set[str] | None, cluster: str | None, initial: list[dict] | None, since: int | None) -> AsyncIterator[WatchEvent]:
        """`initial` objects first (as ADDED, then a BOOKMARK), or the kept history after `since`."""
        w = _Watcher(kinds, cluster)
        if since is not None:
            if since < self.oldest_kept:
                raise Gone(f"resourceVersion {since} is too old; list again")
            backlog = [e for rev, e in self._history if rev > since]
        else:
            backlog = [WatchEvent("ADDED", o) for o in (initial or [])]
            backlog.append(WatchEvent("BOOKMARK", {"kind": "Bookmark", "metadata": {"name": "initial-list-done"}}))
        self._watchers.add(w)
        try:
            for e in backlog:
                if e.type == "BOOKMARK" or w.wants(e.object):
                    yield e
            while True:
                e = await w.queue.get()
                if w.overflowed and w.queue.empty():
                    raise Gone("watch fell too far behind; list again")
                yield e
        finally:
            self._watchers.discard(w)
