import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config import BackendGroup, Endpoint, GatewayRule, ProxyConfig, ServiceRoute, SplitBackend
from proxy.routing.health import EndpointHealth
from proxy.routing.table import RouteTable


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def local(*hosts: str, cluster: str = "cluster-2", weight: int = 100) -> BackendGroup:
    return BackendGroup(cluster, weight, tuple(Endpoint(h, 8080, cluster) for h in hosts))


def remote(cluster: str, weight: int = 100, gateway: str | None = None) -> BackendGroup:
    host = gateway or f"gw-{cluster}"
    return BackendGroup(cluster, weight, (Endpoint(host, 443, cluster, gateway=True, path_prefix="/httpbin"),))


def route(name="httpbin", ns="httpbin", port=8080, **kw) -> ServiceRoute:
    return ServiceRoute(ns, name, port, **kw)


def table(*routes: ServiceRoute, gateway=(), health=None, clock=None, seed=7) -> RouteTable:
    health = health or EndpointHealth(clock=clock or Clock(), consecutive_failures=1)
    cfg = ProxyConfig("cluster-2", "default/default/default/cluster-2", routes=tuple(routes), gateway=tuple(gateway))
    return RouteTable(cfg, health, rng=random.Random(seed))


def eject(t: RouteTable, *hosts: str) -> None:
    for tier_route in t.config.routes:
        for tier in tier_route.tiers:
            for g in tier:
                for e in g.endpoints:
                    if e.host in hosts:
                        t.health.failure(e, 1.0)


def clusters(t: RouteTable, r: ServiceRoute, n: int) -> list[str]:
    return [t.choose(r).cluster for _ in range(n)]


# -- resolve -----------------------------------------------------------------------

def test_resolve_every_name_form_to_the_same_route():
    r = route(tiers=((local("10.0.0.1"),),))
    t = table(r)
    for authority in ("httpbin.httpbin:8080", "HTTPBIN.httpbin.svc.cluster.local:8080",
                      "httpbin.httpbin.svc.clusterset.local.:8080", "httpbin.httpbin"):
        assert t.resolve(authority) is r
    assert t.resolve("httpbin.httpbin:9090") is None
    assert t.resolve("httpbin.other") is None
    assert t.resolve("not a name") is None


def test_resolve_without_port_prefers_port_80_else_the_only_port():
    web80, web9090, api = route("web", "shop", 80), route("web", "shop", 9090), route("api", "shop", 9000)
    a, b = route("two", "shop", 8080), route("two", "shop", 8081)
    t = table(web80, web9090, api, a, b)
    assert t.resolve("web.shop") is web80
    assert t.resolve("api.shop") is api
    assert t.resolve("two.shop") is None  # ambiguous
    assert t.resolve("two.shop:8081") is b


# -- policies ----------------------------------------------------------------------

def test_locality_without_local_endpoints_says_why():
    t = table(route(policy="Locality", tiers=((local(),),)))
    r = t.resolve("httpbin.httpbin:8080")
    assert t.choose(r) == "no local endpoints for httpbin.httpbin:8080 under policy Locality"


def test_locality_with_ejected_endpoints_says_how_many():
    t = table(route(policy="Locality", tiers=((local("10.0.0.1"),),)))
    eject(t, "10.0.0.1")
    reason = t.choose(t.config.routes[0])
    assert reason == ("no available local endpoints for httpbin.httpbin:8080 under policy Locality "
                      "(0 available of 1 (1 ejected))")


def test_unroutable_text_from_the_controller_wins():
    t = table(route(tiers=((local(),),), unroutable="export httpbin from some cluster"))
    assert t.choose(t.config.routes[0]) == "export httpbin from some cluster"


def test_failover_uses_local_while_available_then_alternates_between_targets():
    r = route(policy="FailOver", tiers=((local("10.0.0.1"),), (remote("cluster-1"), remote("cluster-3"))))
    t = table(r)
    assert set(clusters(t, r, 5)) == {"cluster-2"}
    eject(t, "10.0.0.1")
    assert clusters(t, r, 6) == ["cluster-1", "cluster-3"] * 3
    t.health.clock.t += 5  # ejection over
    assert clusters(t, r, 2) == ["cluster-2", "cluster-2"]


def test_failover_skips_a_target_behind_a_dead_gateway():
    r = route(policy="FailOver", tiers=((local(),), (remote("cluster-1"), remote("cluster-3"))))
    t = table(r)
    t.health.set_gateway_alive("gw-cluster-1:443", False)
    assert clusters(t, r, 4) == ["cluster-3"] * 4
    t.health.set_gateway_alive("gw-cluster-3:443", False)
    assert t.choose(r) == ("no available endpoints for httpbin.httpbin:8080 under policy FailOver "
                           "(local: 0 available, targets: 0 available of 2 (2 behind a dead gateway))")


def test_failover_reason_with_nothing_configured():
    r = route(policy="FailOver", tiers=((local(),), ()))
    assert table(r).choose(r) == ("no available endpoints for httpbin.httpbin:8080 under policy FailOver "
                                  "(local: 0 available, targets: 0 available)")


def test_active_active_spreads_by_weight_smoothly():
    r = route(policy="ActiveActive", tiers=((local("10.0.0.1"), remote("cluster-1", 50), remote("cluster-3", 50)),))
    t = table(r)
    picks = clusters(t, r, 400)
    assert Counter(picks) == {"cluster-2": 200, "cluster-1": 100, "cluster-3": 100}
    assert all(picks[i] != picks[i + 1] or picks[i] == "cluster-2" for i in range(len(picks) - 1))
    assert picks[:4] == ["cluster-2", "cluster-1", "cluster-3", "cluster-2"]


def test_zero_weight_group_gets_nothing():
    r = route(policy="ActiveActive", tiers=((local("10.0.0.1"), remote("cluster-1", 0)),))
    t = table(r)
    assert set(clusters(t, r, 10)) == {"cluster-2"}


def test_exclude_sends_a_retry_to_another_endpoint():
    r = route(balancer="round-robin", tiers=((local("10.0.0.1", "10.0.0.2"),), (remote("cluster-1"),)))
    t = table(r)
    first = t.choose(r)
    second = t.choose(r, exclude=frozenset({first.address}))
    assert second.address != first.address and second.cluster == "cluster-2"
    third = t.choose(r, exclude=frozenset({first.address, second.address}))
    assert third.cluster == "cluster-1"  # the next tier
    assert "2 already tried" in t.choose(r, exclude=frozenset({first.address, second.address, third.address}))


def test_health_survives_a_config_change():
    clock = Clock()
    health = EndpointHealth(clock=clock, consecutive_failures=1)
    r = route(policy="FailOver", tiers=((local("10.0.0.1"),), (remote("cluster-1"),)))
    t1 = table(r, health=health)
    eject(t1, "10.0.0.1")
    r2 = route(policy="FailOver", tiers=((local("10.0.0.1"),), (remote("cluster-1"), remote("cluster-3"))))
    t2 = table(r2, health=health)
    assert t2.choose(r2).cluster != "cluster-2"
    assert t2.choose(r).cluster in ("cluster-1", "cluster-3")  # a stale route object: the table's current one


# -- TrafficSplit --------------------------------------------------------------------

def test_split_picks_backends_by_weight():
    root = route("web", "shop", 80, split=(SplitBackend("web-v1", 90), SplitBackend("web-v2", 10)))
    v1 = route("web-v1", "shop", 80, tiers=((local("10.0.1.1"),),))
    v2 = route("web-v2", "shop", 80, tiers=((local("10.0.2.1"),),))
    t = table(root, v1, v2)
    hosts = Counter(t.choose(root).host for _ in range(100))
    assert hosts == {"10.0.1.1": 90, "10.0.2.1": 10}


def test_split_skips_backends_without_route_or_endpoints_and_uses_the_only_port():
    root = route("web", "shop", 80, split=(SplitBackend("gone", 50), SplitBackend("empty", 50),
                                            SplitBackend("web-cluster-3", 50)))
    empty = route("empty", "shop", 80, tiers=((local(),),))
    mirrored = route("web-cluster-3", "shop", 8080, tiers=((remote("cluster-3"),),))
    t = table(root, empty, mirrored)
    assert {t.choose(root).cluster for _ in range(5)} == {"cluster-3"}
    t.health.set_gateway_alive("gw-cluster-3:443", False)
    assert t.choose(root) == (
        "no available backends for web.shop:80 under TrafficSplit (gone: no route for gone.shop:80, "
        "empty: 0 available, web-cluster-3: 0 available of 1 (1 behind a dead gateway))"
    )


def test_split_backend_named_like_the_root_uses_the_roots_own_endpoints():
    root = route("web", "shop", 80, tiers=((local("10.0.0.1"),),),
                 split=(SplitBackend("web", 1), SplitBackend("web-v2", 1)))
    v2 = route("web-v2", "shop", 80, tiers=((local("10.0.2.1"),),))
    t = table(root, v2)
    assert [t.choose(root).host for _ in range(4)] == ["10.0.0.1", "10.0.2.1"] * 2


# -- gateway -----------------------------------------------------------------------

def rule(path: str, path_type: str = "Prefix", service: str = "httpbin", endpoints=("10.9.0.1",), **kw) -> GatewayRule:
    return GatewayRule(path, path_type, "httpbin", service, 8080,
                       tuple(Endpoint(h, 8080, "cluster-2") for h in endpoints), **kw)


def test_gateway_rules_match_element_wise_longest_first():
    a, ab, exact, root = rule("/a"), rule("/a/b/"), rule("/a/b/c", "Exact"), rule("/")
    t = table(gateway=(a, ab, exact, root))
    assert t.gateway_rule("/a/b") == (ab, "/")
    assert t.gateway_rule("/a/b/x/y?q=1") == (ab, "/x/y?q=1")
    assert t.gateway_rule("/a/bc") == (a, "/bc")
    assert t.gateway_rule("/a/b/c") == (exact, "/")
    assert t.gateway_rule("/a/b/c/d") == (ab, "/c/d")
    assert t.gateway_rule("/a?x") == (a, "/?x")
    assert t.gateway_rule("/zzz") == (root, "/zzz")
    assert table(gateway=(a,)).gateway_rule("/ab") is None
    assert table(gateway=(a,)).gateway_rule("*") is None


def test_choose_local_balances_and_says_why_when_nothing_is_left():
    r = rule("/httpbin", endpoints=("10.9.0.1", "10.9.0.2"), balancer="round-robin")
    t = table(gateway=(r,))
    assert [t.choose_local(r).host for _ in range(4)] == ["10.9.0.1", "10.9.0.2"] * 2
    for e in r.endpoints:
        t.health.failure(e, 1.0)
    # share 0.5 of a set of 2: the second is not ejected
    assert t.choose_local(r).host == "10.9.0.2"
    assert t.choose_local(r, exclude=frozenset({"10.9.0.2:8080"})) == (
        "no available local endpoints for httpbin.httpbin:8080 in cluster cluster-2 "
        "(0 available of 2 (1 ejected and 1 already tried))"
    )
    empty = rule("/empty", endpoints=())
    assert table(gateway=(empty,)).choose_local(empty) == (
        "no local endpoints for httpbin.httpbin:8080 in cluster cluster-2"
    )


# -- validation ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("routes", "gateway", "message"),
    [
        ((route(), route()), (), "route httpbin.httpbin:8080: duplicate"),
        ((route(balancer="random"),), (), "route httpbin.httpbin:8080: unknown balancer 'random'"),
        ((route(tiers=((local("10.0.0.1", weight=-1),),)),), (), "negative weight -1 for cluster cluster-2"),
        ((route(split=(SplitBackend("x", -5),)),), (), "negative weight -5 for split backend x"),
        ((route(port=0),), (), "route httpbin.httpbin:0: port"),
        ((), (rule("httpbin"),), "gateway rule 'httpbin' .*: path must start with '/'"),
        ((), (rule("/a", "Regex"),), "unknown path_type 'Regex'"),
        ((), (rule("/a"), rule("/a/")), "gateway rule '/a/' .*: duplicate Prefix path"),
    ],
)
def test_invalid_config_is_refused_naming_the_route_and_field(routes, gateway, message):
    with pytest.raises(ValueError, match=message):
        table(*routes, gateway=gateway)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=20), min_size=2, max_size=5))
def test_smooth_wrr_gives_each_cluster_exactly_its_weight_per_cycle(weights):
    groups = tuple(remote(f"cluster-{i}", w) for i, w in enumerate(weights))
    r = route(policy="ActiveActive", tiers=(groups,))
    t = table(r)
    for _ in range(2):
        picks = Counter(clusters(t, r, sum(weights)))
        assert picks == {f"cluster-{i}": w for i, w in enumerate(weights)}
