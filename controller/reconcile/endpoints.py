"""Where a Service's local backends are: Workload replicas it selects, or the addresses of its
Endpoints / EndpointSlices when it has no selector (as in Kubernetes)."""
from __future__ import annotations

from proxy.config import Endpoint

from .state import ADDRESSES_ANNOTATION, FederationState, Obj


def workload_labels(workload: Obj) -> dict[str, str]:
    return workload["spec"].get("labels") or {"app": workload["metadata"]["name"]}


def selected_workloads(state: FederationState, cluster: str, namespace: str, service: Obj) -> list[Obj]:
    selector = service["spec"].get("selector") or {}
    if not selector:
        return []
    return [
        w
        for w in state.workloads.get((cluster, namespace), ())
        if all(workload_labels(w).get(k) == v for k, v in selector.items())
    ]


def _port_matches(service_port: dict, port: dict, only_one: bool) -> bool:
    name = service_port.get("name")
    return only_one or (name is not None and port.get("name") == name)


def local_endpoints(state: FederationState, cluster: str, namespace: str, name: str, port: int) -> tuple[Endpoint, ...]:
    service = state.services.get((cluster, namespace, name))
    if service is None:
        return ()
    sport = next((p for p in service["spec"].get("ports", []) if p["port"] == port), None)
    if sport is None:
        return ()
    out: list[Endpoint] = []
    if service["spec"].get("selector"):
        for w in selected_workloads(state, cluster, namespace, service):
            addresses = w["metadata"].get("annotations", {}).get(ADDRESSES_ANNOTATION, "")
            for ip in filter(None, addresses.split(",")):
                out.append(Endpoint(host=ip, port=w["spec"]["port"], cluster=cluster))
        if out:
            return tuple(out)
        # no Workload selected: Kubernetes keeps EndpointSlices for selector Services too

    target = sport.get("targetPort") if isinstance(sport.get("targetPort"), int) else None
    eps = state.endpoints.get((cluster, namespace, name))
    if eps is not None:
        for subset in eps.get("subsets", []):
            ports = subset.get("ports", [])
            chosen = [p["port"] for p in ports if _port_matches(sport, p, len(ports) == 1)] or ([target] if target else [])
            for addr in subset.get("addresses", []):
                out.extend(Endpoint(host=addr["ip"], port=p, cluster=cluster) for p in chosen)
    for sl in state.slices.get((cluster, namespace, name), ()):
        ports = sl.get("ports", [])
        chosen = [p["port"] for p in ports if _port_matches(sport, p, len(ports) == 1)] or ([target] if target else [])
        for ep in sl.get("endpoints", []):
            if ep.get("conditions", {}).get("ready") is False:
                continue
            out.extend(Endpoint(host=a, port=p, cluster=cluster) for a in ep["addresses"] for p in chosen)
    return tuple(dict.fromkeys(out))
