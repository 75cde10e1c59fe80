"""Each cluster's effective routing, computed as plain data (no sockets)."""
from tests.support import apply_reference, fixture_text


def groups(route):
    return [[(g.cluster, g.weight, len(g.endpoints)) for g in tier] for tier in route.tiers]


def route(cfg, name, port=8080, ns="httpbin"):
    return next(r for r in cfg.routes if (r.namespace, r.name, r.port) == (ns, name, port))


async def test_locality_without_policy_has_no_endpoints_in_cluster_2(controller):
    await apply_reference(controller)
    r = route(controller.core.proxy_config("cluster-2"), "httpbin")
    assert r.policy == "Locality" and groups(r) == [[]]
    assert r.unroutable == "no local endpoints for httpbin.httpbin:8080 under policy Locality"


async def test_failover_then_local_then_activeactive(controller):
    await apply_reference(controller, policy="fsm_gtp_failover.yaml")
    r = route(controller.core.proxy_config("cluster-2"), "httpbin")
    assert r.policy == "FailOver"
    assert groups(r) == [[], [("cluster-1", 1, 1), ("cluster-3", 1, 1)]]
    remote = r.tiers[1][0].endpoints[0]
    assert remote.gateway and remote.path_prefix == "/cluster-1/httpbin-mesh"

    await controller.apply(fixture_text("fsm_httpbin_cluster-1.yaml").replace("cluster-1 and controlled by mesh", "cluster-2"), cluster="cluster-2")
    r = route(controller.core.proxy_config("cluster-2"), "httpbin")
    assert groups(r) == [[("cluster-2", 100, 1)], [("cluster-1", 1, 1), ("cluster-3", 1, 1)]]
    assert not r.tiers[0][0].endpoints[0].gateway

    await controller.apply(fixture_text("fsm_gtp_activeactive.yaml"), cluster="cluster-2", namespace="httpbin")
    r = route(controller.core.proxy_config("cluster-2"), "httpbin")
    assert r.policy == "ActiveActive"
    assert groups(r) == [[("cluster-2", 100, 1), ("cluster-1", 100, 1), ("cluster-3", 100, 1)]]


async def test_weights_and_mirrored_names(controller):
    await apply_reference(controller)
    await controller.apply(
        """
apiVersion: flomesh.io/v1alpha1
kind: GlobalTrafficPolicy
metadata: {name: httpbin, namespace: httpbin}
spec:
  lbType: ActiveActive
  targets: [{clusterKey: default/default/default/cluster-1, weight: 30}, {clusterKey: default/default/default/cluster-3, weight: 0}]
""",
        cluster="cluster-2",
    )
    cfg = controller.core.proxy_config("cluster-2")
    assert groups(route(cfg, "httpbin")) == [[("cluster-1", 30, 1)]]
    # Linkerd-style mirrored names exist unless a real service already has that name
    names = {r.name for r in cfg.routes}
    assert "httpbin-cluster-1" in names
    mirror = route(cfg, "httpbin-cluster-1")
    assert mirror.policy == "Locality"  # the real import httpbin-cluster-1 wins over the mirror name


async def test_gateway_rules_of_an_exporting_cluster(controller):
    await apply_reference(controller)
    rules = {g.path: g for g in controller.core.proxy_config("cluster-1").gateway}
    assert set(rules) == {"/cluster-1/httpbin-mesh", "/cluster-1/httpbin-mesh-cluster-1"}
    rule = rules["/cluster-1/httpbin-mesh"]
    assert (rule.namespace, rule.service, rule.port, rule.path_type) == ("httpbin", "httpbin", 8080, "Prefix")
    assert rule.service_account == "*" and rule.allowed_clusters == ()
    assert [e.port for e in rule.endpoints] == [8080] and not rule.endpoints[0].gateway


async def test_service_without_selector_takes_endpoint_slices(controller):
    await apply_reference(controller)
    await controller.apply(
        """
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: apps}
spec: {ports: [{port: 80, targetPort: 9000}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: legacy-abc, namespace: apps, labels: {kubernetes.io/service-name: legacy}}
addressType: IPv4
endpoints:
- addresses: [127.0.0.1]
- addresses: [127.0.0.2]
  conditions: {ready: false}
ports: [{port: 9000}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: legacy, namespace: apps}
subsets: [{addresses: [{ip: 127.0.0.3}], ports: [{port: 9001}]}]
""",
        cluster="cluster-2",
    )
    r = route(controller.core.proxy_config("cluster-2"), "legacy", 80, "apps")
    assert sorted(e.address for e in r.tiers[0][0].endpoints) == ["127.0.0.1:9000", "127.0.0.3:9001"]


async def test_traffic_split_is_attached_to_its_root(controller):
    await apply_reference(controller)
    await controller.apply(
        """
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: httpbin-split, namespace: httpbin}
spec:
  service: httpbin
  backends: [{service: httpbin-cluster-1, weight: 90}, {service: httpbin-cluster-3, weight: 10}]
""",
        cluster="cluster-2",
    )
    r = route(controller.core.proxy_config("cluster-2"), "httpbin")
    assert [(b.service, b.weight) for b in r.split] == [("httpbin-cluster-1", 90), ("httpbin-cluster-3", 10)]
