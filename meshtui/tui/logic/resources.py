"""The generic resource table: CLUSTER (when no cluster is selected), NAMESPACE, NAME, a few
columns that say the most about each kind, and AGE."""
from __future__ import annotations

from typing import Any, Callable

from controller.model import BY_NAME

from . import fmt
from .clusters import is_production

Obj = dict[str, Any]
Extract = Callable[[Obj], str]


def _spec(o: Obj) -> dict:
    return o.get("spec") or {}


def _valid(o: Obj) -> str:
    conds = {c["type"]: c["status"] for c in (o.get("status") or {}).get("conditions", [])}
    if conds.get("Conflict") == "True":
        return "Conflict"
    return {"True": "True", "False": "False"}.get(conds.get("Valid", ""), "-")


def _endpoints_of_import(o: Obj) -> str:
    keys = {ep["clusterKey"].rsplit("/", 1)[-1] for p in _spec(o).get("ports", []) for ep in p.get("endpoints", [])}
    return ",".join(sorted(keys)) or "-"


def _addresses(o: Obj) -> str:
    ready = [f"{a['ip']}" for s in o.get("subsets", []) for a in s.get("addresses", [])]
    ready += [a for ep in o.get("endpoints", []) for a in ep.get("addresses", [])]
    return ",".join(ready) or "-"


def _link_alive(o: Obj) -> str:
    alive = (o.get("status") or {}).get("alive")
    return "-" if alive is None else ("True" if alive else "False")


KIND_COLUMNS: dict[str, list[tuple[str, Extract]]] = {
    "Cluster": [
        ("KEY", lambda o: "/".join(_spec(o).get(f) or "default" for f in ("region", "zone", "group"))),
        ("PRODUCTION", lambda o: "yes" if is_production(o) else "-"),
        ("GATEWAY", lambda o: f"{_spec(o).get('gatewayHost') or '-'}:{_spec(o).get('gatewayPort') or '-'}"),
    ],
    "Service": [
        ("PORTS", lambda o: ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in _spec(o).get("ports", [])) or "-"),
        ("SELECTOR", lambda o: ",".join(f"{k}={v}" for k, v in (_spec(o).get("selector") or {}).items()) or "-"),
    ],
    "ServiceExport": [
        ("RULES", lambda o: ",".join(f"{r['portNumber']}{r.get('path', '/')}" for r in _spec(o).get("rules", [])) or "-"),
        ("AUDIENCE", lambda o: ",".join(_spec(o).get("targetClusters") or []) or "all"),
        ("VALID", _valid),
    ],
    "ServiceImport": [
        ("TYPE", lambda o: _spec(o).get("type", "-")),
        ("PORTS", lambda o: ",".join(str(p["port"]) for p in _spec(o).get("ports", [])) or "-"),
        ("FROM", _endpoints_of_import),
    ],
    "GlobalTrafficPolicy": [
        ("LBTYPE", lambda o: _spec(o).get("lbType", "Locality")),
        ("TARGETS", lambda o: ",".join(
            f"{t['clusterKey'].rsplit('/', 1)[-1]}" + (f"={t['weight']}" if t.get("weight") is not None else "")
            for t in _spec(o).get("targets", [])) or "-"),
        ("VALID", _valid),
    ],
    "Endpoints": [("ADDRESSES", _addresses)],
    "EndpointSlice": [("ADDRESSES", _addresses)],
    "TrafficSplit": [
        ("SERVICE", lambda o: _spec(o).get("service", "-")),
        ("BACKENDS", lambda o: ",".join(f"{b['service']}={b['weight']}" for b in _spec(o).get("backends", []))),
    ],
    "Workload": [
        ("APP", lambda o: _spec(o).get("app", "-")),
        ("REPLICAS", lambda o: str(_spec(o).get("replicas", "-"))),
        ("PORT", lambda o: str(_spec(o).get("port", "-"))),
    ],
    "Link": [
        ("FROM", lambda o: _spec(o).get("sourceCluster", "-")),
        ("TO", lambda o: _spec(o).get("targetCluster", "-")),
        ("ALIVE", _link_alive),
        ("LATENCY", lambda o: fmt.ms((o.get("status") or {}).get("latencyMs"))),
    ],
}


def resource_columns(kind: str, all_clusters: bool) -> list[str]:
    namespaced = BY_NAME[kind].namespaced
    lead = (["CLUSTER"] if all_clusters and namespaced else []) + (["NAMESPACE"] if namespaced else [])
    return lead + ["NAME"] + [label for label, _ in KIND_COLUMNS.get(kind, [])] + ["AGE"]


def resource_cells(obj: Obj, all_clusters: bool) -> tuple[str, ...]:
    """The cells of every column but the last, AGE (see age_cell)."""
    md = obj["metadata"]
    namespaced = BY_NAME[obj["kind"]].namespaced
    lead = ([md.get("cluster", "")] if all_clusters and namespaced else []) + ([md.get("namespace", "")] if namespaced else [])
    extra = [extract(obj) for _, extract in KIND_COLUMNS.get(obj["kind"], [])]
    return tuple(lead + [md["name"]] + extra)


def age_cell(obj: Obj, now: float) -> str:
    created = fmt.iso_epoch(obj["metadata"].get("creationTimestamp", ""))
    return fmt.age(now - created) if created else "-"
