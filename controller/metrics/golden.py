"""Golden metrics (success rate, RPS, p50/p95/p99) from the proxies' flow increases.

What a row counts (each request once):
- A request is counted where its client's outbound proxy observed it (direction `outbound`):
  that view includes everything after the client (gateway hop, remote failures, 503s of
  requests that could not be routed). The destination side (`gateway`, `inbound`) sees the
  same requests again, so it is counted only for sources whose outbound proxy is not scraped
  (for example callers in a Kubernetes-backed member); an empty source is one of ours.
- `service` rows: per (destination cluster, namespace, service), i.e. the cluster that served
  the request. A request that found no endpoint has no destination cluster and is counted
  under the cluster it was sent from.
- `cluster` rows: all service rows of a cluster (the traffic that cluster served).
- `edge` rows: per (source cluster, destination cluster, namespace, service), local traffic
  (source = destination) included, unroutable requests not (they reached no cluster);
  `cluster` holds the destination cluster.
Latency quantiles follow Prometheus' histogram_quantile (linear inside the bucket)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from controller.interface import GoldenRow

from .flows import FlowCounts
from .window import WindowDelta

WINDOWS: dict[str, float] = {"10s": 10.0, "1m": 60.0}
SOURCE_SIDE = "outbound"


def window_seconds(window: str) -> float:
    try:
        return WINDOWS[window]
    except KeyError:
        raise ValueError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}") from None


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """q-quantile of a cumulative histogram {upper bound: count} (+Inf included), as Prometheus
    computes it: linear interpolation inside the bucket holding the rank; a rank in the +Inf
    bucket answers the largest finite bound. None without observations."""
    if not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    counts: list[float] = []
    running = 0.0
    for b in bounds:  # counts of a delta may dip by rounding or a torn reset: keep them monotonic
        running = max(running, buckets[b])
        counts.append(running)
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    i = next(i for i, c in enumerate(counts) if c >= rank)
    if bounds[i] == math.inf:
        return bounds[-2] if len(bounds) > 1 else None
    lower = bounds[i - 1] if i > 0 else 0.0
    below = counts[i - 1] if i > 0 else 0.0
    inside = counts[i] - below
    if inside <= 0:
        return bounds[i]
    return lower + (bounds[i] - lower) * (rank - below) / inside


@dataclass
class _Acc:
    success: float = 0.0
    failure: float = 0.0
    rps: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def add(self, c: FlowCounts, elapsed_s: float) -> None:
        self.success += c.success
        self.failure += c.failure
        self.rps += (c.success + c.failure) / elapsed_s
        for le, n in c.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + n

    def row(self, scope: str, window: str, **where: str) -> GoldenRow:
        total = self.success + self.failure
        return GoldenRow(
            scope=scope, window=window, **where, requests=int(round(total)),
            success_rate=self.success / total if total > 0 else None, rps=self.rps,
            p50_ms=histogram_quantile(0.50, self.buckets), p95_ms=histogram_quantile(0.95, self.buckets),
            p99_ms=histogram_quantile(0.99, self.buckets),
        )


def golden_rows(proxies: Iterable[tuple[str, WindowDelta]], window: str) -> list[GoldenRow]:
    """`proxies`: (observing cluster, its flows' increase over the window) for every scraped proxy."""
    proxies = list(proxies)
    observed = {cluster for cluster, _ in proxies}
    services: dict[tuple[str, str, str], _Acc] = {}
    clusters: dict[str, _Acc] = {}
    edges: dict[tuple[str, str, str, str], _Acc] = {}
    for observer, delta in proxies:
        if delta.elapsed_s <= 0:
            continue
        for key, counts in delta.flows.items():
            if key.direction == SOURCE_SIDE:
                src = key.src_cluster or observer
            elif key.src_cluster and key.src_cluster not in observed:
                src = key.src_cluster
            else:
                continue
            dst = key.dst_cluster or src
            services.setdefault((dst, key.dst_namespace, key.dst_service), _Acc()).add(counts, delta.elapsed_s)
            clusters.setdefault(dst, _Acc()).add(counts, delta.elapsed_s)
            if key.dst_cluster:
                edges.setdefault((src, dst, key.dst_namespace, key.dst_service), _Acc()).add(counts, delta.elapsed_s)
    rows = [acc.row("service", window, cluster=c, namespace=ns, service=s) for (c, ns, s), acc in sorted(services.items())]
    rows += [acc.row("cluster", window, cluster=c) for c, acc in sorted(clusters.items())]
    rows += [
        acc.row("edge", window, cluster=d, namespace=ns, service=s, src_cluster=src, dst_cluster=d)
        for (src, d, ns, s), acc in sorted(edges.items())
    ]
    return rows
