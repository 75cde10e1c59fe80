"""The latest golden metrics by scope, and a bounded per-cluster history for trend lines."""
from __future__ import annotations

from collections import deque

from controller.interface import GoldenRow

HISTORY = 300  # points: five minutes at one poll a second


class GoldenStore:
    def __init__(self, history: int = HISTORY) -> None:
        self.services: dict[tuple[str, str, str], GoldenRow] = {}  # (cluster, ns, service)
        self.clusters: dict[str, GoldenRow] = {}
        self.edges: list[GoldenRow] = []
        self.rps_history: dict[str, deque[float]] = {}  # cluster -> RPS per poll
        self.sr_history: dict[str, deque[float]] = {}
        self._history = history
        self.generation = 0

    def update(self, rows: list[GoldenRow]) -> None:
        services, clusters, edges = {}, {}, []
        for r in rows:
            if r.scope == "service":
                services[(r.cluster, r.namespace, r.service)] = r
            elif r.scope == "cluster":
                clusters[r.cluster] = r
            elif r.scope == "edge":
                edges.append(r)
        for name in set(self.rps_history) - set(clusters):  # a cluster that left takes its history along
            del self.rps_history[name]
            del self.sr_history[name]
        for name, r in clusters.items():
            self.rps_history.setdefault(name, deque(maxlen=self._history)).append(r.rps)
            self.sr_history.setdefault(name, deque(maxlen=self._history)).append(1.0 if r.success_rate is None else r.success_rate)
        self.services, self.clusters, self.edges = services, clusters, edges
        self.generation += 1
