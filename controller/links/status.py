"""A Link's status from the probes of its target's gateway (pure), shaped like the columns of
`linkerd multicluster gateways`: alive, number of services, probe latency p50/p95/p99."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol

from controller.reconcile.state import FederationState


class Probed(Protocol):
    """What the prober knows of one gateway (controller/federation/probes.py ProbeState)."""

    checked: bool
    alive: bool
    latency_ms: float | None
    failures: int
    error: str
    last_probe: float | None

    def quantiles(self, now: float) -> tuple[float, float, float] | None: ...


def exported_services(state: FederationState, imports: dict[tuple[str, str, str], dict], source: str, target: str) -> int:
    """ServiceImports in `source` with an endpoint in `target`: what `target` exports to `source`."""
    if target not in state.clusters:
        return 0
    key = state.cluster_key(target)
    return sum(
        1 for (cluster, _, _), imp in imports.items()
        if cluster == source and any(ep.get("clusterKey") == key for p in imp["spec"].get("ports", ()) for ep in p.get("endpoints", ()))
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def link_status(st: Probed, now: float, state: FederationState, imports: dict[tuple[str, str, str], dict],
                source: str, target: str) -> dict[str, Any]:
    """`now`: the monotonic clock of the probe state's latency window."""
    q = st.quantiles(now) or (None, None, None)
    return {
        "alive": st.alive if st.checked else None,
        "latencyMs": _ms(st.latency_ms),
        "p50Ms": _ms(q[0]),
        "p95Ms": _ms(q[1]),
        "p99Ms": _ms(q[2]),
        "services": exported_services(state, imports, source, target),
        "consecutiveFailures": st.failures,
        "lastError": st.error or None,
        "lastProbeTime": (datetime.fromtimestamp(st.last_probe, timezone.utc).isoformat(timespec="seconds")
                          if st.last_probe is not None else None),
    }
