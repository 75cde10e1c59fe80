"""Exports -> ServiceImports, per service name (namespace, name), as pure data.

MCS (KEP-1645) rules: exports of one service from several clusters are merged
into one ServiceImport per consuming cluster; the oldest export sets the
service's shape (ports, protocols, type); an export that disagrees gets
`Conflict=True` and contributes no endpoints, so traffic does not change when a
conflict appears. An export's `targetClusters` decides which clusters import it;
a cluster never imports its own export.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from controller.model.meta import condition

from .state import FederationState, Obj

PROTOCOL_OF_APP = {None: "http", "http": "http", "http2": "http2", "h2c": "http2", "grpc": "grpc", "tcp": "tcp", "kubernetes.io/h2c": "http2"}


@dataclass
class ExportOutcome:
    conditions: list[dict] = field(default_factory=list)
    ports: dict[int, dict] = field(default_factory=dict)  # port -> {protocol, appProtocol, path, pathType}
    valid: bool = False


@dataclass
class ServiceImports:
    imports: dict[str, dict] = field(default_factory=dict)  # consuming cluster -> ServiceImport spec
    exports: dict[str, ExportOutcome] = field(default_factory=dict)  # exporting cluster -> outcome


def default_path(namespace: str, name: str, port: int) -> str:
    return f"/mcs/{namespace}/{name}/{port}"


def export_ports(export: Obj, service: Obj | None) -> tuple[dict[int, dict], str]:
    """The (port -> shape) an export offers, or an error reason."""
    if service is None:
        return {}, "NoService"
    sports = {p["port"]: p for p in service["spec"].get("ports", [])}
    rules = export["spec"].get("rules") or [{"portNumber": p, "path": "", "pathType": "Prefix"} for p in sports]
    out: dict[int, dict] = {}
    for rule in rules:
        sp = sports.get(rule["portNumber"])
        if sp is None:
            return {}, f"NoPort:{rule['portNumber']}"
        md = export["metadata"]
        out[rule["portNumber"]] = {
            "protocol": sp.get("protocol", "TCP"),
            "appProtocol": sp.get("appProtocol"),
            "path": rule.get("path") or default_path(md["namespace"], md["name"], rule["portNumber"]),
            "pathType": rule.get("pathType", "Prefix"),
        }
    return out, ""


def _age(obj: Obj, cluster: str) -> tuple:
    return (obj["metadata"].get("creationTimestamp", ""), cluster)


def _shape(ports: dict[int, dict], service: Obj) -> tuple:
    headless = service["spec"].get("clusterIP") == "None"
    return (headless, tuple(sorted((p, v["protocol"], v["appProtocol"] or "") for p, v in ports.items())))


def _conflict_reason(ref: tuple, mine: tuple) -> tuple[str, str]:
    if ref[0] != mine[0]:
        return "TypeConflict", "service type differs from the oldest export (ClusterSetIP vs Headless)"
    ref_ports = {p for p, *_ in ref[1]}
    my_ports = {p for p, *_ in mine[1]}
    if ref_ports != my_ports:
        return "PortConflict", f"ports {sorted(my_ports)} differ from the oldest export's {sorted(ref_ports)}"
    return "ProtocolConflict", "port protocols differ from the oldest export"


def reconcile_service(state: FederationState, namespace: str, name: str) -> ServiceImports:
    result = ServiceImports()
    exports = state.exports.get((namespace, name), {})
    reference: tuple | None = None
    reference_cluster = ""
    contributing: list[tuple[str, Obj, dict[int, dict]]] = []

    for cluster, export in sorted(exports.items(), key=lambda kv: _age(kv[1], kv[0])):
        outcome = ExportOutcome()
        result.exports[cluster] = outcome
        if cluster not in state.clusters:
            outcome.conditions.append(condition("Valid", False, "UnknownCluster", f"cluster {cluster} is not a member"))
            continue
        service = state.services.get((cluster, namespace, name))
        ports, error = export_ports(export, service)
        if error == "NoService":
            outcome.conditions.append(condition("Valid", False, "NoService", f"no Service {name} in namespace {namespace} of {cluster}"))
            continue
        if error.startswith("NoPort:"):
            port = error.split(":", 1)[1]
            outcome.conditions.append(condition("Valid", False, "NoSuchPort", f"Service {namespace}/{name} in {cluster} has no port {port}"))
            continue
        outcome.conditions.append(condition("Valid", True, "Valid", "export is valid"))
        shape = _shape(ports, service)
        if reference is None:
            reference, reference_cluster = shape, cluster
        elif shape != reference:
            reason, message = _conflict_reason(reference, shape)
            outcome.conditions.append(condition("Conflict", True, reason, f"{message}; the export of {reference_cluster} wins"))
            continue
        outcome.conditions.append(condition("Conflict", False, "NoConflict", ""))
        outcome.ports = ports
        outcome.valid = True
        contributing.append((cluster, export, ports))

    if not contributing:
        return result
    keys = state.cluster_keys()
    offers = []  # per contributing exporter: (name, audience or None, {port: endpoint entry}, shapes, sa)
    for exporter, export, ports in contributing:
        gw = state.gateway_address(exporter)
        if gw is None:
            continue
        audience = export["spec"].get("targetClusters") or None
        entries = {
            port: {"clusterKey": keys[exporter], "target": {"host": gw.host, "ip": gw.ip, "path": shape["path"], "port": gw.port}}
            for port, shape in ports.items()
        }
        offers.append((exporter, set(audience) if audience else None, entries, ports, export["spec"].get("serviceAccountName", "*")))
    specs: dict[tuple[str, ...], dict] = {}  # consumers that see the same exporters share one spec
    for consumer in state.clusters:
        seen = tuple(
            exporter
            for exporter, audience, _, _, _ in offers
            if exporter != consumer and (audience is None or keys[consumer] in audience or consumer in audience)
        )
        if not seen:
            continue
        spec = specs.get(seen)
        if spec is None:
            spec = specs[seen] = _import_spec([o for o in offers if o[0] in seen])
        result.imports[consumer] = spec
    return result


def _import_spec(offers: list) -> dict:
    ports_out: dict[int, dict] = {}
    sa = "*"
    for _, _, entries, shapes, export_sa in offers:
        sa = export_sa
        for port in sorted(entries):
            shape = shapes[port]
            entry = ports_out.setdefault(port, {"port": port, "protocol": shape["protocol"], "endpoints": []})
            if shape["appProtocol"]:
                entry["appProtocol"] = shape["appProtocol"]
            entry["endpoints"].append(entries[port])
    return {"ports": [ports_out[p] for p in sorted(ports_out)], "serviceAccountName": sa, "type": "ClusterSetIP"}
