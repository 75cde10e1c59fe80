"""Each cluster's effective routing as plain data (`proxy.config.ProxyConfig`).

For every service a client in the cluster may call (a local Service, a
ServiceImport, or both) and every port: which endpoints a request may reach,
in which order of preference, under the cluster's GlobalTrafficPolicy and
TrafficSplits; plus the gateway rules of the cluster's own exports.

Policies (consumer side, FSM semantics, DESIGN section 3):
- Locality (default): local endpoints only. With one target, only that cluster.
- FailOver: local endpoints while any is available; then the targets, by weight.
- ActiveActive: local endpoints at weight 100 plus each target at its weight.
"""
from __future__ import annotations

from pathlib import Path

from proxy.config import BackendGroup, Endpoint, GatewayRule, ProxyConfig, ServiceRoute, SplitBackend

from .endpoints import local_endpoints
from .imports import PROTOCOL_OF_APP, ServiceImports
from .state import FederationState, Obj

BALANCER_OF_EXPORT = {"RoundRobinLoadBalancer": "round-robin", "HashingLoadBalancer": "hashing", "LeastWorkLoadBalancer": "ewma"}
LOCAL_WEIGHT = 100


def spiffe_gateway_identity(trust_domain: str, cluster: str) -> str:
    return f"spiffe://{trust_domain}/cluster/{cluster}/ns/meshtui-system/sa/gateway"


def _remote_groups(imp: dict | None, port: int, by_key: dict[str, str], trust_domain: str) -> dict[str, BackendGroup]:
    groups: dict[str, BackendGroup] = {}
    if not imp:
        return groups
    for p in imp["ports"]:
        if p["port"] != port:
            continue
        for ep in p["endpoints"]:
            cluster = by_key.get(ep["clusterKey"])
            if cluster is None:
                continue
            t = ep["target"]
            endpoint = Endpoint(
                host=t.get("ip") or t["host"], port=t["port"], cluster=cluster, gateway=True,
                path_prefix=t.get("path", "/").rstrip("/"),
                server_identity=spiffe_gateway_identity(trust_domain, cluster) if trust_domain else "",
            )
            groups[cluster] = BackendGroup(cluster, 1, (endpoint,))
    return groups


def _tiers(cluster: str, local: tuple[Endpoint, ...], remote: dict[str, BackendGroup], policy: Obj | None, by_key: dict[str, str]) -> tuple[str, tuple]:
    spec = policy["spec"] if policy else {"lbType": "Locality", "targets": []}
    lb = spec.get("lbType", "Locality")
    local_group = (BackendGroup(cluster, LOCAL_WEIGHT, local),) if local else ()
    targets = [(by_key.get(t["clusterKey"]), t.get("weight")) for t in spec.get("targets", [])]
    if lb == "Locality":
        if targets and targets[0][0] and targets[0][0] != cluster:
            pinned = remote.get(targets[0][0])
            return lb, ((BackendGroup(pinned.cluster, 1, pinned.endpoints),),) if pinned else ((),)
        return lb, (local_group,)
    chosen = []
    for name, weight in targets:
        if name == cluster or name not in remote:
            continue
        default = 100 if lb == "ActiveActive" else 1
        chosen.append(BackendGroup(name, default if weight is None else weight, remote[name].endpoints))
    chosen_t = tuple(g for g in chosen if g.weight > 0)
    if lb == "FailOver":
        return lb, (local_group, chosen_t)
    return lb, (local_group + chosen_t,)


def _unroutable(name: str, ns: str, port: int, lb: str, tiers: tuple) -> str:
    if lb == "Locality":
        return f"no local endpoints for {name}.{ns}:{port} under policy Locality"
    return f"no endpoints for {name}.{ns}:{port} under policy {lb}: none local and none in its targets"


def compute_proxy_config(
    state: FederationState,
    cluster: str,
    imports: dict[tuple[str, str], dict],
    outcomes: dict[tuple[str, str], ServiceImports],
    *,
    trust_domain: str = "",
    version: int = 0,
) -> ProxyConfig:
    """`imports`: this cluster's ServiceImport specs by (namespace, name);
    `outcomes`: every service's reconcile outcome (for this cluster's exports)."""
    by_key = state.cluster_by_key()
    routes: list[ServiceRoute] = []
    names: set[tuple[str, str]] = {(ns, n) for (c, ns, n) in state.services if c == cluster} | set(imports)
    for ns, name in sorted(names):
        svc = state.services.get((cluster, ns, name))
        imp = imports.get((ns, name))
        ports: dict[int, str] = {}
        for p in (svc["spec"].get("ports", []) if svc else []):
            if p.get("protocol", "TCP") == "TCP":
                ports[p["port"]] = PROTOCOL_OF_APP.get(p.get("appProtocol"), "http")
        for p in (imp["ports"] if imp else []):
            ports.setdefault(p["port"], PROTOCOL_OF_APP.get(p.get("appProtocol"), "http"))
        policy = state.policies.get((cluster, ns, name))
        for port, protocol in sorted(ports.items()):
            local = local_endpoints(state, cluster, ns, name, port)
            remote = _remote_groups(imp, port, by_key, trust_domain)
            lb, tiers = _tiers(cluster, local, remote, policy, by_key)
            routes.append(ServiceRoute(ns, name, port, protocol, lb, tiers, unroutable=_unroutable(name, ns, port, lb, tiers)))
            for remote_cluster, group in sorted(remote.items()):  # mirrored names, Linkerd style
                mirror = f"{name}-{remote_cluster}"
                if (ns, mirror) in names:
                    continue
                routes.append(ServiceRoute(ns, mirror, port, protocol, "Mirror", ((group,),),
                                           unroutable=f"{remote_cluster}'s gateway for {name}.{ns}:{port} is not available"))
    routes += external_routes(state, cluster, names)
    known = {(r.namespace, r.name) for r in routes}
    for (c, ns), splits in state.splits.items():
        if c != cluster:
            continue
        for split in splits:
            root = split["spec"]["service"]
            backends = tuple(SplitBackend(b["service"], b["weight"]) for b in split["spec"]["backends"] if (ns, b["service"]) in known)
            routes = [
                ServiceRoute(r.namespace, r.name, r.port, r.protocol, r.policy, r.tiers, backends, r.balancer, r.timeout_ms, r.unroutable)
                if (r.namespace, r.name) == (ns, root) else r
                for r in routes
            ]
    return ProxyConfig(cluster=cluster, cluster_key=state.cluster_key(cluster), version=version,
                       routes=tuple(routes), gateway=tuple(gateway_rules(state, cluster, outcomes)))


def external_routes(state: FederationState, cluster: str, taken: set[tuple[str, str]]) -> list[ServiceRoute]:
    """The ExternalServices of `cluster`: one endpoint outside the mesh each, with the TLS the
    proxy originates. A Service (or import) of the same name wins."""
    routes = []
    for (c, ns, name), obj in sorted(state.externals.items()):
        if c != cluster or (ns, name) in taken:
            continue
        spec = obj["spec"]
        tls = spec.get("tls")
        ca, why = "", ""
        if tls is not None:
            ca = tls.get("caBundle") or ""
            if tls.get("caFile"):
                try:
                    ca = Path(tls["caFile"]).read_text()
                except OSError as exc:
                    why = f"ExternalService {name}.{ns}: cannot read tls.caFile {tls['caFile']}: {exc.strerror or exc}"
        endpoint = Endpoint(host=spec["host"], port=spec["port"], cluster=cluster,
                            tls_server_name=(tls.get("serverName") or spec["host"]) if tls is not None else "",
                            tls_ca=ca)
        tiers = ((BackendGroup(cluster, LOCAL_WEIGHT, () if why else (endpoint,)),),)
        routes.append(ServiceRoute(ns, name, spec["port"], PROTOCOL_OF_APP.get(spec.get("appProtocol"), "http"),
                                   "External", tiers, unroutable=why))
    return routes


def gateway_rules(state: FederationState, cluster: str, outcomes: dict[tuple[str, str], ServiceImports]) -> list[GatewayRule]:
    by_key = state.cluster_by_key()
    rules: list[GatewayRule] = []
    for (ns, name), outcome in sorted(outcomes.items()):
        exp = outcome.exports.get(cluster)
        if exp is None or not exp.valid:
            continue
        export = state.exports[(ns, name)][cluster]
        audience = tuple(sorted(by_key.get(k, k) for k in export["spec"].get("targetClusters") or []))
        for port, shape in sorted(exp.ports.items()):
            rules.append(GatewayRule(
                path=shape["path"], path_type=shape["pathType"], namespace=ns, service=name, port=port,
                endpoints=local_endpoints(state, cluster, ns, name, port),
                protocol=PROTOCOL_OF_APP.get(shape["appProtocol"], "http"),
                allowed_clusters=audience, service_account=export["spec"].get("serviceAccountName", "*"),
                balancer=BALANCER_OF_EXPORT.get(export["spec"].get("loadBalancer", ""), "ewma"),
            ))
    return rules
