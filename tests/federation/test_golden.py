"""Golden metrics arithmetic: exposition parsing, counter resets, windows, quantiles, rows."""
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.metrics.exposition import ExpositionError, ExpositionParser, parse_labels
from controller.metrics.flows import FlowCounts, FlowKey, snapshot
from controller.metrics.golden import golden_rows, histogram_quantile, window_seconds
from controller.metrics.window import ScrapeHistory, WindowDelta
from proxy.metrics import Metrics

OUT = FlowKey("outbound", "c2", "c1", "httpbin", "httpbin")


def proxy_text() -> str:
    m = Metrics("c2")
    s = m.series(direction="outbound", src_cluster="c2", dst_cluster="c1", dst_namespace="httpbin", dst_service="httpbin", tls=True)
    for i in range(10):
        s.request()
        s.response(500 if i < 2 else 200, 7.0)
    m.series(direction="outbound", src_cluster="c2", dst_cluster="", dst_namespace="web", dst_service='we"ird\\name', tls=False).response(503, 0.5)
    m.set_gateway("c1", True, 1.2)
    return m.render()


def test_parser_reads_what_prometheus_client_reads():
    text = proxy_text()
    ours = sorted((s.name, tuple(sorted(s.labels.items())), s.value) for s in ExpositionParser().samples(text))
    theirs = sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                    for f in text_string_to_metric_families(text) for s in f.samples)
    assert ours == theirs
    assert any(dict(labels).get("dst_service") == 'we"ird\\name' for _, labels, _ in ours)


def test_parser_names_the_bad_line():
    with pytest.raises(ExpositionError, match=r"scrape-x line 2: not a sample"):
        list(ExpositionParser().samples('ok 1\nbroken{a="1" 2\n', "scrape-x"))
    with pytest.raises(ExpositionError):
        parse_labels('a="1",b=2')


def test_snapshot_sums_success_failure_and_buckets():
    snap = snapshot(ExpositionParser().samples(proxy_text()))
    c = snap[OUT]
    assert (c.success, c.failure) == (8, 2)
    assert c.buckets[5.0] == 0 and c.buckets[10.0] == 10 and c.buckets[math.inf] == 10
    assert snap[FlowKey("outbound", "c2", "", "web", 'we"ird\\name')].failure == 1


def flows(success: float, failure: float = 0.0, buckets: dict | None = None) -> dict:
    return {OUT: FlowCounts(success, failure, buckets or {})}


def test_window_increase_survives_a_counter_reset():
    h = ScrapeHistory()
    h.add(0.0, flows(100, 10))
    h.add(1.0, flows(150, 10))
    h.add(2.0, flows(20, 1))  # the proxy restarted: 20 and 1 since
    h.add(3.0, flows(30, 1))
    d = h.window(10)
    assert d.elapsed_s == 3.0
    assert (d.flows[OUT].success, d.flows[OUT].failure) == (50 + 20 + 10, 1)


def test_window_picks_the_scrape_at_its_start_and_counts_new_flows_from_zero():
    h = ScrapeHistory()
    for t in range(0, 21):
        h.add(float(t), flows(10 * t))
    d = h.window(10)
    assert d.elapsed_s == 10.0 and d.flows[OUT].success == 100
    later = FlowKey("outbound", "c2", "c3", "httpbin", "httpbin")
    h.add(21.0, {OUT: FlowCounts(210), later: FlowCounts(4)})
    assert h.window(10).flows[later].success == 4


def test_flow_missing_from_one_scrape_is_not_counted_twice():
    h = ScrapeHistory()
    h.add(0.0, flows(100))
    h.add(1.0, {})  # restarted, series not created yet
    h.add(2.0, flows(5))
    assert h.window(10).flows[OUT].success == 5


def test_history_is_bounded():
    h = ScrapeHistory(history_s=70)
    for t in range(0, 500):
        h.add(float(t), flows(t))
    assert len(h._totals) <= 72
    assert h.window(60).elapsed_s == 60.0


def test_histogram_quantile_interpolates_like_prometheus():
    b = {1.0: 0, 2.0: 10, 5.0: 20, math.inf: 20}
    assert histogram_quantile(0.5, b) == pytest.approx(2.0)
    assert histogram_quantile(0.25, b) == pytest.approx(1.5)
    assert histogram_quantile(0.75, b) == pytest.approx(3.5)
    assert histogram_quantile(0.99, {1.0: 0, 2.0: 0, math.inf: 4}) == 2.0  # rank in +Inf: last finite bound
    assert histogram_quantile(0.5, {1.0: 0, math.inf: 0}) is None
    assert histogram_quantile(0.5, {}) is None


def test_rows_count_each_request_once():
    window = 10.0
    c2 = WindowDelta({OUT: FlowCounts(8, 2, {10.0: 10, math.inf: 10}),
                      FlowKey("outbound", "c2", "", "web", "web"): FlowCounts(0, 5, {1.0: 5, math.inf: 5})}, window)
    c1 = WindowDelta({FlowKey("gateway", "c2", "c1", "httpbin", "httpbin"): FlowCounts(8, 2, {10.0: 10, math.inf: 10}),
                      FlowKey("gateway", "k8s-east", "c1", "httpbin", "httpbin"): FlowCounts(4, 0, {10.0: 4, math.inf: 4}),
                      FlowKey("outbound", "c1", "c1", "httpbin", "httpbin"): FlowCounts(6, 0, {5.0: 6, math.inf: 6})}, window)
    rows = golden_rows([("c2", c2), ("c1", c1)], "10s")
    by = {(r.scope, r.cluster, r.namespace, r.service, r.src_cluster): r for r in rows}
    svc = by[("service", "c1", "httpbin", "httpbin", "")]
    assert svc.requests == 10 + 4 + 6  # outbound c2->c1, gateway from an unscraped source, local c1
    assert svc.success_rate == pytest.approx(18 / 20)
    assert svc.rps == pytest.approx(2.0)
    unrouted = by[("service", "c2", "web", "web", "")]
    assert unrouted.requests == 5 and unrouted.success_rate == 0.0
    assert by[("cluster", "c1", "", "", "")].requests == 20
    edge = by[("edge", "c1", "httpbin", "httpbin", "c2")]
    assert (edge.dst_cluster, edge.requests, edge.p50_ms) == ("c1", 10, pytest.approx(5.0))
    assert ("edge", "c2", "web", "web", "c2") not in by  # reached no cluster


def test_rows_of_an_idle_flow_have_no_rate_or_latency():
    rows = golden_rows([("c2", WindowDelta({OUT: FlowCounts()}, 10.0))], "1m")
    svc = next(r for r in rows if r.scope == "service")
    assert (svc.requests, svc.success_rate, svc.rps, svc.p99_ms, svc.window) == (0, None, 0.0, None, "1m")
    assert golden_rows([("c2", WindowDelta({OUT: FlowCounts(5)}, 0.0))], "10s") == []


def test_unknown_window_is_refused():
    assert window_seconds("1m") == 60.0
    with pytest.raises(ValueError, match="unknown window '5m'"):
        window_seconds("5m")
