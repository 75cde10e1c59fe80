"""What the views need to know about member clusters: names by clusterKey, production marks,
gateway liveness."""
from __future__ import annotations

from typing import Any, Iterable

from controller.model import cluster_key

Obj = dict[str, Any]
PRODUCTION_LABEL = "meshtui.io/production"


def is_production(cluster: Obj) -> bool:
    labels = cluster["metadata"].get("labels") or {}
    return bool((cluster.get("spec") or {}).get("production")) or labels.get(PRODUCTION_LABEL) == "true"


def production_names(clusters: Iterable[Obj]) -> frozenset[str]:
    return frozenset(c["metadata"]["name"] for c in clusters if is_production(c))


def names_by_key(clusters: Iterable[Obj]) -> dict[str, str]:
    """clusterKey (region/zone/group/name) -> cluster name."""
    return {cluster_key(c["metadata"]["name"], c.get("spec")): c["metadata"]["name"] for c in clusters}


def key_of_cluster(cluster: Obj) -> str:
    return cluster_key(cluster["metadata"]["name"], cluster.get("spec"))


def gateway_state(cluster: Obj, links: Iterable[Obj]) -> tuple[bool | None, float | None, int]:
    """(alive, worst probe latency in ms, number of probing links) of a cluster's gateway.

    From the Links that probe it (status.alive, status.latencyMs); without links, from the
    Cluster's own status.gateway (alive and probeLatencyMs from the embedded prober, else up);
    None where nothing says."""
    name = cluster["metadata"]["name"]
    probing = [l for l in links if (l.get("spec") or {}).get("targetCluster") == name]
    states = [(l.get("status") or {}) for l in probing]
    alive_flags = [s["alive"] for s in states if isinstance(s.get("alive"), bool)]
    latencies = [float(s["latencyMs"]) for s in states if isinstance(s.get("latencyMs"), (int, float))]
    if alive_flags:
        return all(alive_flags), (max(latencies) if latencies else None), len(probing)
    gateway = (cluster.get("status") or {}).get("gateway")
    if not isinstance(gateway, dict):
        return None, None, 0
    alive = gateway.get("alive", gateway.get("up"))
    latency = gateway.get("probeLatencyMs")
    return (alive if isinstance(alive, bool) else None), (float(latency) if isinstance(latency, (int, float)) else None), 0
