"""A bounded history of one proxy's scrapes, as reset-corrected running totals, and the
increase of every flow over a window (Prometheus `increase()` without extrapolation).

Counters only grow; a value lower than the previous scrape's means the proxy restarted,
and the new value is what it counted since (Prometheus' counter-reset rule). Running totals
are corrected at each scrape, so a window's increase is one subtraction however long it is."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .flows import FlowCounts, FlowKey, Snapshot

HISTORY_S = 70.0  # enough for the 1 m window at any scrape period


def _inc(before: float, now: float) -> float:
    return now - before if now >= before else now


def advance(prev_raw: Snapshot | None, prev_total: Snapshot | None, cur_raw: Snapshot) -> Snapshot:
    """Running totals after scrape `cur_raw`, given the previous scrape and its totals.
    The first scrape is the baseline; a flow that disappears keeps its total."""
    if prev_total is None or prev_raw is None:
        return {k: FlowCounts(c.success, c.failure, dict(c.buckets)) for k, c in cur_raw.items()}
    total = dict(prev_total)
    for key, cur in cur_raw.items():
        before = prev_raw.get(key) or FlowCounts()
        base = prev_total.get(key) or FlowCounts()
        total[key] = FlowCounts(
            base.success + _inc(before.success, cur.success),
            base.failure + _inc(before.failure, cur.failure),
            {le: base.buckets.get(le, 0.0) + _inc(before.buckets.get(le, 0.0), n) for le, n in cur.buckets.items()},
        )
    return total


def difference(end: Snapshot, start: Snapshot) -> dict[FlowKey, FlowCounts]:
    out: dict[FlowKey, FlowCounts] = {}
    for key, e in end.items():
        s = start.get(key) or FlowCounts()
        out[key] = FlowCounts(e.success - s.success, e.failure - s.failure,
                              {le: n - s.buckets.get(le, 0.0) for le, n in e.buckets.items()})
    return out


@dataclass(frozen=True, slots=True)
class WindowDelta:
    flows: dict[FlowKey, FlowCounts]
    elapsed_s: float  # time between the two scrapes the increase was measured across


class ScrapeHistory:
    """One proxy's scrapes (monotonic time, oldest first), at most HISTORY_S seconds."""

    def __init__(self, history_s: float = HISTORY_S) -> None:
        self.history_s = history_s
        self._totals: deque[tuple[float, Snapshot]] = deque()
        self._last_raw: Snapshot | None = None

    def add(self, t: float, raw: Snapshot) -> None:
        prev_total = self._totals[-1][1] if self._totals else None
        self._totals.append((t, advance(self._last_raw, prev_total, raw)))
        self._last_raw = raw
        while len(self._totals) > 2 and self._totals[1][0] <= t - self.history_s:
            self._totals.popleft()

    @property
    def last_time(self) -> float | None:
        return self._totals[-1][0] if self._totals else None

    def window(self, seconds: float) -> WindowDelta:
        """Increase over the last `seconds`: from the newest scrape at or before (last - seconds),
        or the oldest kept when the history is shorter, to the last scrape."""
        if len(self._totals) < 2:
            return WindowDelta({}, 0.0)
        end_t, end = self._totals[-1]
        start_t, start = self._totals[0]
        for t, totals in self._totals:
            if t > end_t - seconds:
                break
            start_t, start = t, totals
        return WindowDelta(difference(end, start), end_t - start_t)
