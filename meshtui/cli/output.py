"""Everything the CLI prints: tables with per-kind columns (kubectl style), YAML/JSON, check results."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import yaml

from controller.interface import CheckResult
from controller.model import cluster_key
from controller.reconcile.state import FederationState

Obj = dict[str, Any]
Column = tuple[str, Callable[[Obj], str]]
NONE = "<none>"
FORMATS = ("table", "wide", "yaml", "json")


# cells -------------------------------------------------------------------------------------
def age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's AGE: the largest unit that fits, e.g. 45s, 12m, 3h, 5d."""
    if not timestamp:
        return NONE
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return NONE
    seconds = max(0, int(((now or datetime.now(timezone.utc)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "d" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def joined(values: Iterable[str]) -> str:
    out = ",".join(v for v in values if v)
    return out or NONE


def condition(obj: Obj, ctype: str) -> str:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") == ctype:
            return str(cond.get("status", "Unknown"))
    return "Unknown"


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _ports(ports: list[Obj]) -> str:
    return joined(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports)


def cluster_gateway(obj: Obj) -> str:
    running = _status(obj).get("gateway", {}).get("address")
    if running:
        return running
    addr = FederationState.build([obj]).gateway_address(obj["metadata"]["name"])
    return f"{addr.host}:{addr.port}" if addr else NONE


def cluster_status(obj: Obj) -> str:
    """From the data plane's report in status: Ready, Down (a proxy is not up), Unreachable (its
    gateway fails probes), or Unknown (no data plane reports on it)."""
    st = _status(obj)
    reachable = next((c for c in st.get("conditions", []) if c.get("type") == "Reachable"), None)
    if reachable is not None and reachable.get("status") == "False":
        return "Unreachable"  # a Kubernetes-backed cluster whose API server cannot be reached
    if "gateway" not in st:
        return "Ready" if reachable is not None and reachable.get("status") == "True" else "Unknown"
    if not (st["gateway"].get("up") and st.get("outbound", {}).get("up", True)):
        return "Down"
    return "Unreachable" if st["gateway"].get("alive") is False else "Ready"


def workload_replicas(obj: Obj) -> str:
    """`ready/desired` once the data plane reports, like kubectl's READY."""
    desired = _spec(obj).get("replicas", 1)
    ready = _status(obj).get("readyReplicas")
    return f"{ready}/{desired}" if ready is not None else str(desired)


def link_latency(obj: Obj, field: str = "latencyMs") -> str:
    ms = _status(obj).get(field)
    return f"{ms:.1f}ms" if isinstance(ms, (int, float)) else NONE


def _count(obj: Obj, field: str) -> str:
    value = _status(obj).get(field)
    return str(value) if isinstance(value, int) else NONE


def _alive(obj: Obj) -> str:
    alive = _status(obj).get("alive")
    return NONE if alive is None else str(bool(alive)).lower()


def _endpoint_addresses(obj: Obj) -> str:
    return joined(
        f"{a.get('ip')}:{p.get('port')}"
        for s in obj.get("subsets", []) for a in s.get("addresses", []) for p in (s.get("ports") or [{}])
    )


# columns per kind: (header, cell) after NAME; WIDE adds more with -o wide --------------------
COLUMNS: dict[str, list[Column]] = {
    "Cluster": [
        ("CLUSTERKEY", lambda o: cluster_key(o["metadata"]["name"], _spec(o))),
        ("GATEWAY", cluster_gateway),
        ("STATUS", cluster_status),
    ],
    "ServiceExport": [
        ("RULES", lambda o: joined(f"{r.get('portNumber')}:{r.get('path', '/')}" for r in _spec(o).get("rules", []))),
        ("AUDIENCE", lambda o: joined(_spec(o).get("targetClusters") or ["*"])),
        ("VALID", lambda o: condition(o, "Valid")),
        ("CONFLICT", lambda o: condition(o, "Conflict")),
    ],
    "ServiceImport": [
        ("PORTS", lambda o: _ports(_spec(o).get("ports", []))),
        ("ENDPOINTS", lambda o: joined(dict.fromkeys(e["clusterKey"] for p in _spec(o).get("ports", []) for e in p.get("endpoints", [])))),
    ],
    "GlobalTrafficPolicy": [
        ("LBTYPE", lambda o: _spec(o).get("lbType", "Locality")),
        ("TARGETS", lambda o: joined(
            t["clusterKey"] + (f"({t['weight']})" if t.get("weight") is not None else "") for t in _spec(o).get("targets", []))),
    ],
    "Service": [
        ("PORTS", lambda o: _ports(_spec(o).get("ports", []))),
        ("SELECTOR", lambda o: joined(f"{k}={v}" for k, v in (_spec(o).get("selector") or {}).items())),
    ],
    "Workload": [
        ("APP", lambda o: _spec(o).get("app", "")),
        ("REPLICAS", workload_replicas),
        ("MESSAGE", lambda o: _spec(o).get("message") or NONE),
    ],
    "Link": [  # `linkerd multicluster gateways`, one row per link
        ("SOURCE", lambda o: _spec(o).get("sourceCluster", NONE)),
        ("TARGET", lambda o: _spec(o).get("targetCluster", NONE)),
        ("ALIVE", _alive),
        ("NUM_SVC", lambda o: _count(o, "services")),
        ("LATENCY", link_latency),
        ("LATENCY_P50", lambda o: link_latency(o, "p50Ms")),
        ("LATENCY_P95", lambda o: link_latency(o, "p95Ms")),
        ("LATENCY_P99", lambda o: link_latency(o, "p99Ms")),
    ],
    "TrafficSplit": [
        ("SERVICE", lambda o: _spec(o).get("service", NONE)),
        ("BACKENDS", lambda o: joined(f"{b['service']}:{b['weight']}" for b in _spec(o).get("backends", []))),
    ],
    "Endpoints": [("ENDPOINTS", _endpoint_addresses)],
    "EndpointSlice": [("ENDPOINTS", lambda o: joined(a for e in o.get("endpoints", []) for a in e.get("addresses", [])))],
}

WIDE: dict[str, list[Column]] = {
    "Cluster": [("REGION", lambda o: _spec(o).get("region", "default")), ("ZONE", lambda o: _spec(o).get("zone", "default")),
                ("KUBECONFIG", lambda o: _spec(o).get("kubeconfig") or NONE)],
    "ServiceExport": [("SERVICEACCOUNT", lambda o: _spec(o).get("serviceAccountName", "*")),
                      ("LOADBALANCER", lambda o: _spec(o).get("loadBalancer", NONE))],
    "ServiceImport": [("TARGETS", lambda o: joined(
        f"{e['target'].get('host')}:{e['target'].get('port')}{e['target'].get('path', '')}"
        for p in _spec(o).get("ports", []) for e in p.get("endpoints", [])))],
    "GlobalTrafficPolicy": [("VALID", lambda o: condition(o, "Valid"))],
    "Workload": [("ADDRESSES", lambda o: o["metadata"].get("annotations", {}).get("meshtui.io/addresses") or NONE),
                 ("ERRORRATE", lambda o: str(_spec(o).get("errorRate", 0))),
                 ("LATENCYMS", lambda o: str(_spec(o).get("latencyMs", 0)))],
    "Link": [("GATEWAY", lambda o: _spec(o).get("gatewayAddress") or NONE),
             ("FAILURES", lambda o: _count(o, "consecutiveFailures")),
             ("LAST_ERROR", lambda o: _status(o).get("lastError") or NONE)],
}


# objects -----------------------------------------------------------------------------------
def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def object_table(kind: str, objs: list[Obj], *, show_cluster: bool, show_namespace: bool, wide: bool = False,
                 now: datetime | None = None) -> str:
    columns: list[Column] = []
    if show_cluster:
        columns.append(("CLUSTER", lambda o: o["metadata"].get("cluster") or NONE))
    if show_namespace:
        columns.append(("NAMESPACE", lambda o: o["metadata"].get("namespace") or NONE))
    columns.append(("NAME", lambda o: o["metadata"]["name"]))
    columns += COLUMNS.get(kind, [])
    if wide:
        columns += WIDE.get(kind, [])
    columns.append(("AGE", lambda o: age(o["metadata"].get("creationTimestamp"), now)))
    return table([h for h, _ in columns], [[cell(o) for _, cell in columns] for o in objs])


def as_list(objs: list[Obj]) -> Obj:
    """kubectl's shape for many objects; `meshtui apply -f` accepts it back."""
    return {"apiVersion": "v1", "kind": "List", "items": objs}


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False).rstrip("\n")


# checks ------------------------------------------------------------------------------------
OK, FAIL, WARN = "✔", "✖", "‼"


def check_mark(c: CheckResult) -> str:
    return OK if c.ok else (WARN if c.warning else FAIL)


def checks_passed(results: list[CheckResult]) -> bool:
    return all(c.ok or c.warning for c in results)


def _groups(results: list[CheckResult]) -> dict[str, list[CheckResult]]:
    groups: dict[str, list[CheckResult]] = {}
    for c in results:
        groups.setdefault(c.group, []).append(c)
    return groups


def checks_text(results: list[CheckResult]) -> str:
    """`linkerd check` style: a heading per group, one line per check, the message and hint under a problem."""
    out: list[str] = []
    for group, checks in _groups(results).items():
        out += [group, "-" * len(group)]
        for c in checks:
            out.append(f"{check_mark(c)} {c.name}")
            if not c.ok:
                out += [f"    {c.message}"] if c.message else []
                out += [f"    hint: {c.hint}"] if c.hint else []
        out.append("")
    out.append(f"Status check results are {OK if checks_passed(results) else FAIL}")
    return "\n".join(out)


def checks_json(results: list[CheckResult]) -> Obj:
    """`linkerd check -o json`'s shape."""
    return {
        "success": checks_passed(results),
        "categories": [
            {"categoryName": group, "checks": [
                {"description": c.name, "result": "success" if c.ok else ("warning" if c.warning else "error"),
                 "error": "" if c.ok else c.message, "hint": "" if c.ok else c.hint}
                for c in checks
            ]}
            for group, checks in _groups(results).items()
        ],
    }
