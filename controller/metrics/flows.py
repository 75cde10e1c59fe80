"""One scrape of one proxy, reduced to what golden metrics need: per flow (direction, source
cluster, destination cluster/namespace/service) the success and failure response counts and
the cumulative latency histogram. Other labels (tls, status_code, the observing cluster) are
summed away."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from .exposition import Sample


class FlowKey(NamedTuple):
    direction: str  # outbound | gateway | inbound
    src_cluster: str
    dst_cluster: str
    dst_namespace: str
    dst_service: str


@dataclass
class FlowCounts:
    success: float = 0.0
    failure: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le (ms, inf last) -> cumulative count


Snapshot = dict[FlowKey, FlowCounts]


def _key(labels: dict[str, str]) -> FlowKey:
    return FlowKey(labels.get("direction", ""), labels.get("src_cluster", ""), labels.get("dst_cluster", ""),
                   labels.get("dst_namespace", ""), labels.get("dst_service", ""))


def snapshot(samples: Iterable[Sample]) -> Snapshot:
    out: Snapshot = {}
    for s in samples:
        if s.name == "response_total":
            counts = out.setdefault(_key(s.labels), FlowCounts())
            if s.labels.get("classification") == "failure":
                counts.failure += s.value
            else:
                counts.success += s.value
        elif s.name == "response_latency_ms_bucket":
            le = s.labels.get("le", "+Inf")
            bound = math.inf if le in ("+Inf", "Inf", "inf") else float(le)
            counts = out.setdefault(_key(s.labels), FlowCounts())
            counts.buckets[bound] = counts.buckets.get(bound, 0.0) + s.value
    return out
