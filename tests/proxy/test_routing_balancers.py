import random
from collections import Counter

from proxy.config import BackendGroup, Endpoint, ProxyConfig, ServiceRoute
from proxy.routing.health import EndpointHealth
from proxy.routing.table import RouteTable


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def setup(balancer: str, hosts=("10.0.0.1", "10.0.0.2", "10.0.0.3"), *, groups=None, seed=3):
    clock = Clock()
    health = EndpointHealth(clock=clock, consecutive_failures=1)
    eps = tuple(Endpoint(h, 8080, "c1") for h in hosts)
    tiers = ((BackendGroup("c1", 100, eps),),) if groups is None else (groups,)
    r = ServiceRoute("ns", "svc", 8080, balancer=balancer, tiers=tiers)
    t = RouteTable(ProxyConfig("c1", "k", routes=(r,)), health, rng=random.Random(seed))
    return t, r, eps, clock


def test_round_robin_cycles_and_skips_ejected_endpoints():
    t, r, eps, _ = setup("round-robin")
    assert [t.choose(r).host for _ in range(6)] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"] * 2
    t.health.failure(eps[1], 1.0)
    assert [t.choose(r).host for _ in range(4)] == ["10.0.0.1", "10.0.0.3"] * 2


def test_ewma_prefers_the_faster_endpoint_until_its_queue_outweighs_it():
    t, r, eps, _ = setup("ewma", hosts=("10.0.0.1", "10.0.0.2"))
    slow, fast = eps
    t.health.success(slow, 100.0)
    t.health.success(fast, 5.0)
    assert {t.choose(r).host for _ in range(20)} == {"10.0.0.2"}
    for _ in range(20):  # cost 5 * 21 > 100 * 1
        t.health.start(fast)
    assert t.choose(r) == slow


def test_ewma_power_of_two_never_picks_the_slowest_of_three():
    t, r, eps, _ = setup("ewma")
    for e, ms in zip(eps, (10.0, 20.0, 300.0)):
        t.health.success(e, ms)
    picks = Counter(t.choose(r).host for _ in range(300))
    assert picks["10.0.0.3"] == 0
    assert picks["10.0.0.1"] > picks["10.0.0.2"] > 0  # p2c: the middle one wins only against the slowest


def test_ewma_idle_slow_endpoint_decays_and_is_tried_again():
    t, r, eps, clock = setup("ewma", hosts=("10.0.0.1", "10.0.0.2"))
    t.health.success(eps[0], 1000.0)
    clock.t += 60
    t.health.success(eps[1], 5.0)  # 1000 * e^-6 = 2.5 < 5
    assert t.choose(r) == eps[0]


def test_ewma_is_deterministic_for_a_seed():
    def run(seed):
        t, r, eps, _ = setup("ewma", hosts=tuple(f"10.0.0.{i}" for i in range(1, 7)), seed=seed)
        return [t.choose(r).host for _ in range(50)]

    assert run(11) == run(11)
    assert len(set(run(11))) > 1


def test_hashing_sends_a_key_to_the_same_endpoint_and_moves_only_its_keys():
    t, r, eps, _ = setup("hashing", hosts=tuple(f"10.0.0.{i}" for i in range(1, 6)))
    keys = [f"user-{i}".encode() for i in range(500)]
    before = {k: t.choose(r, hash_key=k).host for k in keys}
    assert before == {k: t.choose(r, hash_key=k).host for k in keys}
    spread = Counter(before.values())
    assert len(spread) == 5 and min(spread.values()) > 60
    t.health.failure(eps[2], 1.0)  # 10.0.0.3 ejected
    after = {k: t.choose(r, hash_key=k).host for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "10.0.0.3"}


def test_hashing_retry_goes_to_the_keys_next_endpoint():
    t, r, eps, _ = setup("hashing")
    first = t.choose(r, hash_key=b"k")
    second = t.choose(r, hash_key=b"k", exclude=frozenset({first.address}))
    assert second != first
    assert second == t.choose(r, hash_key=b"k", exclude=frozenset({first.address}))


def test_hashing_without_key_goes_round_robin():
    t, r, eps, _ = setup("hashing")
    assert [t.choose(r).host for _ in range(3)] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_hashing_picks_the_cluster_by_key_and_weight():
    groups = (
        BackendGroup("c1", 300, (Endpoint("10.0.0.1", 8080, "c1"),)),
        BackendGroup("c2", 100, (Endpoint("gw2", 443, "c2", gateway=True),)),
    )
    t, r, _, _ = setup("hashing", groups=groups)
    keys = [f"k{i}".encode() for i in range(2000)]
    first = [t.choose(r, hash_key=k).cluster for k in keys]
    assert first == [t.choose(r, hash_key=k).cluster for k in keys]
    share = Counter(first)["c1"] / len(keys)
    assert 0.70 < share < 0.80
