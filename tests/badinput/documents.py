"""One valid document of every writable kind (valid over the reference scenario), and a hypothesis
strategy that mutates them: wrong types, missing and extra fields, negative numbers, huge strings, unicode."""
from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

VALID: dict[str, dict[str, Any]] = {
    "Cluster": {"apiVersion": "flomesh.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "cluster-9"},
                "spec": {"gatewayHost": "127.0.0.9", "gatewayPort": 14001, "region": "r", "zone": "z", "group": "g"}},
    "ServiceExport": {"apiVersion": "flomesh.io/v1alpha1", "kind": "ServiceExport",
                      "metadata": {"name": "httpbin", "namespace": "httpbin"},
                      "spec": {"serviceAccountName": "*", "targetClusters": ["default/default/default/cluster-2"],
                               "loadBalancer": "RoundRobinLoadBalancer",
                               "rules": [{"portNumber": 8080, "path": "/c1/httpbin", "pathType": "Prefix"}]}},
    "GlobalTrafficPolicy": {"apiVersion": "flomesh.io/v1alpha1", "kind": "GlobalTrafficPolicy",
                            "metadata": {"name": "httpbin", "namespace": "httpbin"},
                            "spec": {"lbType": "ActiveActive",
                                     "targets": [{"clusterKey": "default/default/default/cluster-1", "weight": 50}]}},
    "Service": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "apps", "labels": {"a": "b"}},
                "spec": {"selector": {"app": "web"},
                         "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "appProtocol": "http"}]}},
    "Endpoints": {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "legacy", "namespace": "apps"},
                  "subsets": [{"addresses": [{"ip": "127.0.0.3"}], "ports": [{"port": 9001}]}]},
    "EndpointSlice": {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": "legacy-abc", "namespace": "apps", "labels": {"kubernetes.io/service-name": "legacy"}},
                      "addressType": "IPv4", "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
                      "ports": [{"port": 9000}]},
    "TrafficSplit": {"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
                     "metadata": {"name": "split", "namespace": "httpbin"},
                     "spec": {"service": "httpbin", "backends": [{"service": "httpbin-cluster-1", "weight": 90},
                                                                 {"service": "httpbin-cluster-3", "weight": 10}]}},
    "Workload": {"apiVersion": "meshtui.io/v1alpha1", "kind": "Workload", "metadata": {"name": "web", "namespace": "apps"},
                 "spec": {"app": "echo", "replicas": 2, "port": 8080, "message": "hi", "errorRate": 0.1, "latencyMs": 2,
                          "serviceAccountName": "web", "labels": {"app": "web"}}},
    "Link": {"apiVersion": "meshtui.io/v1alpha1", "kind": "Link", "metadata": {"name": "c2-to-c1"},
             "spec": {"sourceCluster": "cluster-2", "targetCluster": "cluster-1",
                      "probe": {"path": "/live", "port": 9999, "period": 0.5, "failureThreshold": 2, "timeout": 0.25}}},
    "ExternalService": {"apiVersion": "meshtui.io/v1alpha1", "kind": "ExternalService",
                        "metadata": {"name": "pay", "namespace": "payments"},
                        "spec": {"host": "127.0.0.5", "port": 443, "appProtocol": "http", "tls": {"serverName": "pay.example"}}},
}

HUGE = "x" * 200_000
bad_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.integers(max_value=-1),
    st.floats(allow_nan=True, allow_infinity=True), st.just(HUGE), st.text(min_size=0, max_size=40),
    st.just("ünï©ødé ☃ \u202e \x00 𝔘"), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into the document: dict keys and list indexes."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += paths(value, prefix + (i,))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated(draw, kind: str) -> tuple[dict[str, Any], str, tuple]:
    """(document, what was done, path): one valid document with one mutation at one place."""
    doc = copy.deepcopy(VALID[kind])
    path = draw(st.sampled_from(paths(doc)))
    how = draw(st.sampled_from(["replace", "delete", "extra"]))
    parent = _parent(doc, path)
    if how == "replace":
        parent[path[-1]] = draw(bad_values)
    elif how == "delete":
        del parent[path[-1]]
    else:
        target = parent[path[-1]]
        if not isinstance(target, dict):
            target = parent if isinstance(parent, dict) else doc
        target[draw(st.sampled_from(["bogus", "ünknown", "x" * 300]))] = draw(bad_values)
    return doc, how, path
