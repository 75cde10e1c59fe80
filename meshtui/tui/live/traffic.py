"""Bounded buffers of tap events: the request stream (one record per request id, merged from its
request_init / response_init / response_end events) and `top`'s aggregation by source,
destination, method and path."""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from proxy.events import TapDropped, TapEvent

GRPC_FAILURES = frozenset({2, 4, 13, 14, 15})  # Unknown, DeadlineExceeded, Internal, Unavailable, DataLoss


def is_failure(e: TapEvent) -> bool:
    return e.status >= 500 or bool(e.error) or (e.grpc_status is not None and e.grpc_status in GRPC_FAILURES)


@dataclass(slots=True)
class TapRecord:
    """One request: its first event (request fields) and its latest (response fields)."""

    request: TapEvent
    last: TapEvent

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def phase(self) -> str:
        return self.last.kind


class TapBuffer:
    """The last `capacity` requests seen; requests still open are tracked by id, at most `open_cap`."""

    def __init__(self, capacity: int = 1000, open_cap: int = 4096) -> None:
        self.records: deque[TapRecord] = deque()
        self.by_id: dict[str, TapRecord] = {}
        self.capacity = capacity
        self.open_cap = open_cap
        self._open: OrderedDict[str, TapRecord] = OrderedDict()
        self.events = 0
        self.dropped = 0
        self.version = 0

    def add(self, item: TapEvent | TapDropped) -> None:
        self.version += 1
        if isinstance(item, TapDropped):
            self.dropped += item.dropped
            return
        self.events += 1
        rec = self._open.get(item.id)
        if rec is None:
            rec = TapRecord(item, item)
            self._push(rec)
            if item.kind != "response_end":
                self._open[item.id] = rec
                if len(self._open) > self.open_cap:
                    self._open.popitem(last=False)
            return
        rec.last = item
        if item.kind == "response_end":
            del self._open[item.id]

    def _push(self, rec: TapRecord) -> None:
        if len(self.records) >= self.capacity:
            old = self.records.popleft()
            self.by_id.pop(old.id, None)
            self._open.pop(old.id, None)
        self.records.append(rec)
        self.by_id[rec.id] = rec

    def latest(self, n: int) -> list[TapRecord]:
        start = max(0, len(self.records) - n)
        return [self.records[i] for i in range(start, len(self.records))]

    def clear(self) -> None:
        self.records.clear()
        self.by_id.clear()
        self._open.clear()
        self.version += 1


@dataclass(slots=True)
class TopStats:
    count: int = 0
    failures: int = 0
    best_ms: float = float("inf")
    worst_ms: float = 0.0
    last_ms: float = 0.0

    @property
    def success_rate(self) -> float:
        return 1 - self.failures / self.count if self.count else 1.0


TopKey = tuple[str, str, str, str]  # source, destination, method, path


@dataclass
class TopTable:
    """Counts per (source, destination, method, path) of finished requests; the least recently
    seen keys are forgotten beyond `capacity`."""

    capacity: int = 2000
    stats: OrderedDict[TopKey, TopStats] = field(default_factory=OrderedDict)
    version: int = 0

    def add(self, item: TapEvent | TapDropped) -> None:
        if isinstance(item, TapDropped) or item.kind != "response_end":
            return
        src = item.src_cluster or item.cluster
        dst = f"{item.dst_service}.{item.dst_namespace}@{item.dst_cluster}" if item.dst_service else item.authority
        key = (src, dst, item.method, item.path)
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = TopStats()
            if len(self.stats) > self.capacity:
                self.stats.popitem(last=False)
        else:
            self.stats.move_to_end(key)
        latency = item.duration_ms or item.latency_ms
        s.count += 1
        s.failures += is_failure(item)
        s.best_ms = min(s.best_ms, latency)
        s.worst_ms = max(s.worst_ms, latency)
        s.last_ms = latency
        self.version += 1

    def top(self, n: int) -> list[tuple[TopKey, TopStats]]:
        return sorted(self.stats.items(), key=lambda kv: (-kv[1].count, kv[0]))[:n]

    def clear(self) -> None:
        self.stats.clear()
        self.version += 1
