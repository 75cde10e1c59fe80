import pytest

from proxy.config import Endpoint
from proxy.routing.health import DEFAULT_RTT_MS, GATEWAY_RECHECK_S, EndpointHealth


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def ep(host: str, cluster: str = "c1", gateway: bool = False) -> Endpoint:
    return Endpoint(host, 8080, cluster, gateway=gateway)


def make(clock: Clock, **kw) -> EndpointHealth:
    return EndpointHealth(clock=clock, **kw)


def fail(h: EndpointHealth, e: Endpoint, n: int) -> None:
    for _ in range(n):
        h.start(e)
        h.failure(e, 1.0)


def row(h: EndpointHealth, e: Endpoint) -> dict:
    return next(r for r in h.snapshot() if r["address"] == e.address and r["cluster"] == e.cluster)


def test_consecutive_failures_eject_for_a_time_that_doubles_up_to_the_cap():
    clock = Clock()
    h = make(clock, consecutive_failures=3, base_ejection_s=5, max_ejection_s=12)
    a = ep("10.0.0.1")
    fail(h, a, 2)
    assert h.available(a)
    fail(h, a, 1)
    assert not h.available(a)
    assert row(h, a)["ejections"] == 1 and row(h, a)["ejected_for_s"] == 5
    clock.t += 5
    assert h.available(a)  # returns by itself
    fail(h, a, 3)
    assert row(h, a)["ejected_for_s"] == 10  # 5 * 2
    clock.t += 10
    fail(h, a, 3)
    assert row(h, a)["ejected_for_s"] == 12  # 20, capped
    assert row(h, a)["ejections"] == 3


def test_success_resets_the_consecutive_count():
    clock = Clock()
    h = make(clock, consecutive_failures=3)
    a = ep("10.0.0.1")
    fail(h, a, 2)
    h.start(a)
    h.success(a, 3.0)
    fail(h, a, 2)
    assert h.available(a)
    assert row(h, a)["failures"] == 2


def test_ejection_count_starts_over_after_staying_in_for_max_ejection_time():
    clock = Clock()
    h = make(clock, consecutive_failures=1, base_ejection_s=5, max_ejection_s=60)
    a = ep("10.0.0.1")
    fail(h, a, 1)
    clock.t += 5
    fail(h, a, 1)
    assert row(h, a)["ejected_for_s"] == 10
    clock.t += 10 + 61
    fail(h, a, 1)
    assert row(h, a)["ejections"] == 1 and row(h, a)["ejected_for_s"] == 5


def test_never_ejects_more_than_the_share_of_a_set_but_always_one():
    clock = Clock()
    h = make(clock, consecutive_failures=1, max_ejected_share=0.5)
    eps = [ep(f"10.0.0.{i}") for i in range(1, 5)]
    h.track([eps])
    for e in eps:
        fail(h, e, 1)
    assert [h.available(e) for e in eps] == [False, False, True, True]

    lone = ep("10.0.1.1", "c2")
    h2 = make(clock, consecutive_failures=1, max_ejected_share=0.1)
    h2.track([[lone]])
    fail(h2, lone, 1)
    assert not h2.available(lone)  # a set's first ejection is always allowed


def test_share_is_counted_per_set_so_other_clusters_do_not_block_ejection():
    clock = Clock()
    h = make(clock, consecutive_failures=1, max_ejected_share=0.5)
    local = [ep("10.0.0.1"), ep("10.0.0.2")]
    remote = [ep("gw2", "c2", gateway=True)]
    h.track([local, remote])
    fail(h, local[0], 1)
    fail(h, remote[0], 1)
    fail(h, local[1], 1)
    assert [h.available(e) for e in (*local, *remote)] == [False, True, False]


def test_refused_ejection_happens_once_the_set_has_room():
    clock = Clock()
    h = make(clock, consecutive_failures=1, base_ejection_s=5, max_ejected_share=0.5)
    a, b = ep("10.0.0.1"), ep("10.0.0.2")
    h.track([[a, b]])
    fail(h, a, 1)
    fail(h, b, 1)
    assert h.available(b)
    clock.t += 5
    fail(h, b, 1)
    assert not h.available(b) and h.available(a)


def test_probe_verdict_marks_gateway_endpoints_only():
    clock = Clock()
    h = make(clock)
    gw = ep("gw2", "c2", gateway=True)
    direct = Endpoint("gw2", 8080, "c2")
    h.set_gateway_alive("gw2:8080", False)
    assert not h.available(gw) and h.available(direct)
    clock.t += 3600
    assert not h.available(gw)  # dead until a probe says alive
    h.set_gateway_alive("gw2:8080", True)
    assert h.available(gw)


def test_connect_failure_marks_the_gateway_down_until_recheck_or_probe():
    clock = Clock()
    h = make(clock, consecutive_failures=5)
    gw = ep("gw2", "c2", gateway=True)
    other_service_same_gateway = Endpoint("gw2", 8080, "c2", gateway=True, path_prefix="/other")
    h.start(gw)
    h.connect_failed(gw)
    assert not h.available(gw) and not h.available(other_service_same_gateway)
    assert row(h, gw)["failures"] == 1 and row(h, gw)["inflight"] == 0
    clock.t += GATEWAY_RECHECK_S
    assert h.available(gw)
    h.connect_failed(gw)
    h.set_gateway_alive("gw2:8080", True)
    assert h.available(gw)


def test_connect_failure_does_not_shorten_a_probe_verdict():
    clock = Clock()
    h = make(clock)
    gw = ep("gw2", "c2", gateway=True)
    h.set_gateway_alive("gw2:8080", False)
    h.connect_failed(gw)
    clock.t += GATEWAY_RECHECK_S + 1
    assert not h.available(gw)


def test_peak_ewma_takes_a_slower_sample_at_once_and_decays_toward_faster_ones():
    clock = Clock()
    h = make(clock, ewma_decay_s=10.0)
    a = ep("10.0.0.1")
    h.state(a)
    assert row(h, a)["ewma_ms"] == DEFAULT_RTT_MS
    h.start(a)
    assert row(h, a)["inflight"] == 1
    h.success(a, 200.0)
    assert row(h, a)["ewma_ms"] == 200.0 and row(h, a)["inflight"] == 0
    clock.t += 10.0
    h.success(a, 20.0)  # weight of the old estimate: e^-1
    assert row(h, a)["ewma_ms"] == pytest.approx(200 * 0.36788 + 20 * 0.63212, rel=1e-4)


def test_failures_raise_the_latency_estimate_but_never_lower_it():
    clock = Clock()
    h = make(clock)
    a = ep("10.0.0.1")
    h.success(a, 100.0)
    h.failure(a, 1.0)
    assert row(h, a)["ewma_ms"] == 100.0
    h.failure(a, 500.0)
    assert row(h, a)["ewma_ms"] == 500.0


def test_track_forgets_endpoints_no_longer_configured():
    clock = Clock()
    h = make(clock, consecutive_failures=1)
    a, b = ep("10.0.0.1"), ep("10.0.0.2")
    h.track([[a, b]])
    fail(h, a, 1)
    h.track([[a]])
    assert [r["address"] for r in h.snapshot()] == ["10.0.0.1:8080"]
    assert not h.available(a)  # state of kept endpoints survives the new table


def test_state_is_found_by_value_and_a_forgotten_endpoint_starts_afresh():
    clock = Clock()
    h = make(clock, consecutive_failures=1)
    a = ep("10.0.0.1")
    h.track([[a]])
    h.start(a)
    same = ep("10.0.0.1")  # an equal Endpoint from a newer config: the same state
    assert same is not a and h.state(same) is h.state(a) and h.state(a).inflight == 1
    h.success(same, 5.0)
    assert h.state(a).inflight == 0
    fail(h, a, 1)
    h.track([[ep("10.0.0.2")]])  # a is no longer configured: its state (ejection) is gone
    assert h.available(a) and h.state(a).failures == 0 and h.state(a).ejections == 0


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"consecutive_failures": 0}, "consecutive_failures"),
        ({"base_ejection_s": 0}, "base_ejection_s"),
        ({"base_ejection_s": 10, "max_ejection_s": 5}, "max_ejection_s"),
        ({"max_ejected_share": 1.5}, "max_ejected_share"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        EndpointHealth(**kw)
