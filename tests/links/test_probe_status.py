"""Gateway probes folded into a Link's status (pure): verdicts with the failure threshold, the
faster pace after a failure, p50/p95/p99 over a window, and the services the target exports to
the source."""
from __future__ import annotations

import pytest

from controller.embedded import EmbeddedController
from controller.federation.probes import ProbeState, ProbeTarget, next_delay, record_probe
from controller.links import exported_services, link_status
from tests.support import apply_reference, fixture_text

TARGET = ProbeTarget(cluster="c1", gateway="127.0.11.1:4143", url="http://127.0.11.1:4191/ready", period_s=3.0,
                     timeout_s=1.0, failure_threshold=3)


def test_a_gateway_dies_after_threshold_failures_probed_faster_once_one_failed():
    st = ProbeState()
    assert record_probe(st, True, 2.0, "", 3, now=0.0)  # the first verdict
    assert next_delay(TARGET, st) == 3.0
    assert not record_probe(st, False, None, "refused", 3, now=3.0)
    assert st.alive and st.failures == 1 and next_delay(TARGET, st) == 1.0  # 3 failures fit in one period
    assert not record_probe(st, False, None, "refused", 3, now=4.0)
    assert record_probe(st, False, None, "refused", 3, now=5.0)  # dead, 2 s after the first failure
    assert not st.alive and next_delay(TARGET, st) == 3.0
    assert record_probe(st, True, 1.5, "", 3, now=8.0)  # one success brings it back
    assert st.alive and st.failures == 0 and st.error == "refused"  # the last error stays on record


def test_latency_quantiles_cover_the_window_only():
    st = ProbeState()
    for i in range(100):
        record_probe(st, True, float(i + 1), "", 3, now=float(i), window_s=60.0)
    # samples of the last 60 s: latencies 40..100
    assert st.quantiles(99.0, window_s=60.0) == (70.0, 97.0, 100.0)
    assert min(ms for _, ms in st.window) == 40.0
    assert ProbeState().quantiles(0.0) is None


async def test_link_status_counts_the_services_the_target_exports_to_the_source():
    c = await EmbeddedController.open(None, loopback_base="127.88")
    await apply_reference(c)
    state, imports = c.core.state, c.core.imports
    assert exported_services(state, imports, "cluster-2", "cluster-1") == 2  # httpbin, httpbin-cluster-1
    assert exported_services(state, imports, "cluster-1", "cluster-3") == 2
    assert exported_services(state, imports, "cluster-1", "cluster-2") == 0
    only_3 = fixture_text("fsm_export_cluster-1.yaml").replace(
        '  name: httpbin-cluster-1\nspec:\n', '  name: httpbin-cluster-1\nspec:\n  targetClusters: ["default/default/default/cluster-3"]\n')
    await c.apply(only_3, cluster="cluster-1")
    assert exported_services(state, imports, "cluster-2", "cluster-1") == 1

    st = ProbeState()
    for i, ms in enumerate((1.0, 2.0, 9.0)):
        record_probe(st, True, ms, "", 3, now=float(i))
    record_probe(st, False, None, "http://x/ready: 503", 3, now=3.0)
    st.last_probe = 1_700_000_000.0
    assert link_status(st, 3.0, state, imports, "cluster-2", "cluster-1") == {
        "alive": True, "latencyMs": 9.0, "p50Ms": 2.0, "p95Ms": 9.0, "p99Ms": 9.0, "services": 1,
        "consecutiveFailures": 1, "lastError": "http://x/ready: 503", "lastProbeTime": "2023-11-14T22:13:20+00:00"}
    assert link_status(ProbeState(), 0.0, state, imports, "cluster-2", "cluster-1")["alive"] is None


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_a_single_sample_is_every_quantile(q):
    st = ProbeState()
    record_probe(st, True, 4.0, "", 3, now=0.0)
    assert st.quantiles(0.0) == (4.0, 4.0, 4.0)
