"""Indices over the stored resources, shaped for the reconciler's questions."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from controller.model import cluster_key

Obj = dict[str, Any]

ADDRESSES_ANNOTATION = "meshtui.io/addresses"  # a Workload's replica IPs, assigned by the controller
LOOPBACK_ANNOTATION = "meshtui.io/loopback"  # an embedded Cluster's /24, e.g. "127.0.11"

GATEWAY_PORT = 4143
OUTBOUND_PORT = 4140
ADMIN_PORT = 4191


@dataclass(frozen=True, slots=True)
class GatewayAddress:
    host: str
    ip: str
    port: int


@dataclass
class FederationState:
    clusters: dict[str, Obj] = field(default_factory=dict)
    services: dict[tuple[str, str, str], Obj] = field(default_factory=dict)  # (cluster, ns, name)
    exports: dict[tuple[str, str], dict[str, Obj]] = field(default_factory=lambda: defaultdict(dict))  # (ns, name) -> cluster -> obj
    policies: dict[tuple[str, str, str], Obj] = field(default_factory=dict)  # (cluster, ns, name)
    splits: dict[tuple[str, str], list[Obj]] = field(default_factory=lambda: defaultdict(list))  # (cluster, ns)
    workloads: dict[tuple[str, str], list[Obj]] = field(default_factory=lambda: defaultdict(list))  # (cluster, ns)
    endpoints: dict[tuple[str, str, str], Obj] = field(default_factory=dict)  # (cluster, ns, name)
    slices: dict[tuple[str, str, str], list[Obj]] = field(default_factory=lambda: defaultdict(list))  # (cluster, ns, svc)
    links: dict[str, Obj] = field(default_factory=dict)
    externals: dict[tuple[str, str, str], Obj] = field(default_factory=dict)  # ExternalService (cluster, ns, name)
    _keys: dict[str, str] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, objects: Iterable[Obj]) -> "FederationState":
        st = cls()
        for obj in objects:
            st.add(obj)
        return st

    def add(self, obj: Obj) -> None:
        kind, md = obj["kind"], obj["metadata"]
        c, ns, name = md.get("cluster", ""), md.get("namespace", ""), md["name"]
        if kind == "Cluster":
            self.clusters[name] = obj
            self._keys = None
        elif kind == "Service":
            self.services[(c, ns, name)] = obj
        elif kind == "ServiceExport":
            self.exports[(ns, name)][c] = obj
        elif kind == "GlobalTrafficPolicy":
            self.policies[(c, ns, name)] = obj
        elif kind == "TrafficSplit":
            self.splits[(c, ns)].append(obj)
        elif kind == "Workload":
            self.workloads[(c, ns)].append(obj)
        elif kind == "Endpoints":
            self.endpoints[(c, ns, name)] = obj
        elif kind == "EndpointSlice":
            svc = md.get("labels", {}).get("kubernetes.io/service-name", name)
            self.slices[(c, ns, svc)].append(obj)
        elif kind == "Link":
            self.links[name] = obj
        elif kind == "ExternalService":
            self.externals[(c, ns, name)] = obj

    def remove(self, obj: Obj) -> None:
        kind, md = obj["kind"], obj["metadata"]
        c, ns, name = md.get("cluster", ""), md.get("namespace", ""), md["name"]
        if kind == "Cluster":
            self.clusters.pop(name, None)
            self._keys = None
        elif kind == "Service":
            self.services.pop((c, ns, name), None)
        elif kind == "ServiceExport":
            self.exports[(ns, name)].pop(c, None)
            if not self.exports[(ns, name)]:
                del self.exports[(ns, name)]
        elif kind == "GlobalTrafficPolicy":
            self.policies.pop((c, ns, name), None)
        elif kind == "TrafficSplit":
            self.splits[(c, ns)] = [o for o in self.splits[(c, ns)] if o["metadata"]["name"] != name]
        elif kind == "Workload":
            self.workloads[(c, ns)] = [o for o in self.workloads[(c, ns)] if o["metadata"]["name"] != name]
        elif kind == "Endpoints":
            self.endpoints.pop((c, ns, name), None)
        elif kind == "EndpointSlice":
            svc = md.get("labels", {}).get("kubernetes.io/service-name", name)
            self.slices[(c, ns, svc)] = [o for o in self.slices[(c, ns, svc)] if o["metadata"]["name"] != name]
        elif kind == "Link":
            self.links.pop(name, None)
        elif kind == "ExternalService":
            self.externals.pop((c, ns, name), None)

    # questions -------------------------------------------------------------------------
    def cluster_key(self, name: str) -> str:
        return cluster_key(name, self.clusters[name].get("spec"))

    def cluster_keys(self) -> dict[str, str]:
        """cluster name -> clusterKey, cached until the set of clusters changes."""
        if self._keys is None:
            self._keys = {n: self.cluster_key(n) for n in self.clusters}
        return self._keys

    def cluster_by_key(self) -> dict[str, str]:
        return {k: n for n, k in self.cluster_keys().items()}

    def gateway_address(self, name: str) -> GatewayAddress | None:
        obj = self.clusters.get(name)
        if obj is None:
            return None
        spec = obj.get("spec", {})
        loopback = obj["metadata"].get("annotations", {}).get(LOOPBACK_ANNOTATION)
        host = spec.get("gatewayHost") or (f"{loopback}.1" if loopback else "")
        if not host:
            return None
        return GatewayAddress(host=host, ip=host, port=spec.get("gatewayPort") or GATEWAY_PORT)

    def services_in(self, cluster: str) -> Iterable[tuple[tuple[str, str, str], Obj]]:
        return ((k, v) for k, v in self.services.items() if k[0] == cluster)
