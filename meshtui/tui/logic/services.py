"""One row per service per cluster, merged from Services, ServiceImports, ServiceExports and
policies; and a service's backends (local replicas and remote gateways) for the drill-down."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.reconcile.endpoints import workload_labels
from controller.reconcile.state import ADDRESSES_ANNOTATION

from ..live.cache import ResourceCache
from .clusters import names_by_key

Obj = dict[str, Any]
SLICE_SERVICE_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, slots=True)
class Backend:
    address: str
    cluster: str
    via: str  # workload NAME | endpoints | slice | gateway
    ready: bool | None  # None: not known from resources alone


@dataclass(frozen=True, slots=True)
class ServiceView:
    cluster: str
    namespace: str
    name: str
    local: bool  # a Service of that name exists in the cluster
    ready: int
    total: int
    exported_to: str  # "-", "all", or cluster names
    export_state: str  # "", "Valid", "Invalid: ...", "Conflict: ..."
    imported_from: tuple[str, ...]
    policy: str  # lbType of the cluster's GlobalTrafficPolicy for it, "" when none

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.cluster, self.namespace, self.name)


def service_key(cluster: str, namespace: str, name: str) -> str:
    """The row key of one service in one cluster, in every per-service table."""
    return f"{cluster}/{namespace}/{name}"


def local_backends(cache: ResourceCache, cluster: str, namespace: str, name: str) -> list[Backend]:
    service = cache.get("Service", cluster, namespace, name)
    if service is None:
        return []
    spec = service.get("spec") or {}
    out: list[Backend] = []
    selector = spec.get("selector") or {}
    if selector:
        for w in cache.in_namespace("Workload", cluster, namespace):
            md = w["metadata"]
            if not all(workload_labels(w).get(k) == v for k, v in selector.items()):
                continue
            addresses = [a for a in (md.get("annotations") or {}).get(ADDRESSES_ANNOTATION, "").split(",") if a]
            port = w["spec"].get("port", "")
            ready_count = (w.get("status") or {}).get("readyReplicas")  # from the embedded runtime, when it runs
            ready = None if ready_count is None else (True if ready_count >= len(addresses) else False if ready_count == 0 else None)
            out += [Backend(f"{ip}:{port}", cluster, f"workload {md['name']}", ready) for ip in addresses]
        return out
    eps = cache.get("Endpoints", cluster, namespace, name)
    for subset in (eps or {}).get("subsets", []):
        ports = [p["port"] for p in subset.get("ports", [])] or [""]
        for addresses, ready in ((subset.get("addresses", []), True), (subset.get("notReadyAddresses", []), False)):
            out += [Backend(f"{a['ip']}:{p}", cluster, "endpoints", ready) for a in addresses for p in ports]
    for sl in cache.in_namespace("EndpointSlice", cluster, namespace):
        md = sl["metadata"]
        if (md.get("labels") or {}).get(SLICE_SERVICE_LABEL) != name:
            continue
        ports = [p["port"] for p in sl.get("ports", [])] or [""]
        for ep in sl.get("endpoints", []):
            ready = (ep.get("conditions") or {}).get("ready")
            out += [Backend(f"{a}:{p}", cluster, f"slice {md['name']}", ready is not False) for a in ep["addresses"] for p in ports]
    return out


def remote_backends(cache: ResourceCache, cluster: str, namespace: str, name: str, alive: dict[str, bool | None]) -> list[Backend]:
    imp = cache.get("ServiceImport", cluster, namespace, name)
    if imp is None:
        return []
    by_key = names_by_key(cache.list("Cluster"))
    out = []
    for port in (imp.get("spec") or {}).get("ports", []):
        for ep in port.get("endpoints", []):
            t = ep["target"]
            owner = by_key.get(ep["clusterKey"], ep["clusterKey"])
            out.append(Backend(f"{t.get('ip') or t['host']}:{t['port']}{t.get('path', '')}", owner, "gateway", alive.get(owner)))
    return out


def import_sources(imp: Obj | None, by_key: dict[str, str]) -> tuple[str, ...]:
    if imp is None:
        return ()
    keys = {ep["clusterKey"] for p in (imp.get("spec") or {}).get("ports", []) for ep in p.get("endpoints", [])}
    return tuple(sorted(by_key.get(k, k) for k in keys))


def audience(export: Obj, by_key: dict[str, str]) -> str:
    targets = (export.get("spec") or {}).get("targetClusters") or []
    return ",".join(sorted(by_key.get(t, t) for t in targets)) if targets else "all"


def export_state(export: Obj) -> str:
    conds = {c["type"]: c for c in (export.get("status") or {}).get("conditions", [])}
    if conds.get("Conflict", {}).get("status") == "True":
        return f"Conflict: {conds['Conflict'].get('reason', '')}"
    valid = conds.get("Valid")
    if valid is None:
        return ""
    return "Valid" if valid["status"] == "True" else f"Invalid: {valid.get('message') or valid.get('reason', '')}"


def service_views(cache: ResourceCache) -> list[ServiceView]:
    by_key = names_by_key(cache.list("Cluster"))
    keys = {(s["metadata"]["cluster"], s["metadata"]["namespace"], s["metadata"]["name"]) for s in cache.list("Service")}
    keys |= {(i["metadata"]["cluster"], i["metadata"]["namespace"], i["metadata"]["name"]) for i in cache.list("ServiceImport")}
    out = []
    for c, ns, name in sorted(keys):
        local = cache.get("Service", c, ns, name) is not None
        backends = local_backends(cache, c, ns, name) if local else []
        export = cache.get("ServiceExport", c, ns, name)
        policy = cache.get("GlobalTrafficPolicy", c, ns, name)
        out.append(ServiceView(
            c, ns, name, local,
            ready=sum(1 for b in backends if b.ready is not False), total=len(backends),
            exported_to=audience(export, by_key) if export else "-",
            export_state=export_state(export) if export else "",
            imported_from=import_sources(cache.get("ServiceImport", c, ns, name), by_key),
            policy=((policy.get("spec") or {}).get("lbType") or "Locality") if policy else "",
        ))
    return out


def importers_index(cache: ResourceCache) -> dict[tuple[str, str, str], list[str]]:
    """(exporting cluster, namespace, name) -> clusters whose ServiceImport has an endpoint there."""
    by_key = names_by_key(cache.list("Cluster"))
    out: dict[tuple[str, str, str], list[str]] = {}
    for imp in cache.list("ServiceImport"):
        md = imp["metadata"]
        for exporter in import_sources(imp, by_key):
            out.setdefault((exporter, md["namespace"], md["name"]), []).append(md["cluster"])
    return out
