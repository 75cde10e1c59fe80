from prometheus_client.parser import text_string_to_metric_families

from proxy.metrics import LATENCY_BUCKETS_MS, Metrics

OUT = dict(direction="outbound", src_cluster="cluster-1", dst_cluster="cluster-3", dst_namespace="httpbin",
           dst_service="httpbin", tls=True)
BASE = {"cluster": "cluster-1", "direction": "outbound", "src_cluster": "cluster-1", "dst_cluster": "cluster-3",
        "dst_namespace": "httpbin", "dst_service": "httpbin", "tls": "true"}


def samples(m: Metrics) -> dict[str, list]:
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(m.render()):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(found: dict, name: str, **labels) -> float:
    want = {**BASE, **labels}
    matches = [s.value for s in found[name] if s.labels == want]
    assert len(matches) == 1, (name, labels, found.get(name))
    return matches[0]


def test_requests_responses_and_classification():
    m = Metrics("cluster-1")
    s = m.series(**OUT)
    assert m.series(**OUT) is s
    for code, kw in ((200, {}), (200, {}), (404, {}), (503, {}), (200, {"grpc_status": 14}),
                     (200, {"grpc_status": 5}), (0, {"error": "connect refused"})):
        s.request()
        s.response(code, 7.0, **kw)
    found = samples(m)
    assert value(found, "request_total") == 7
    assert value(found, "response_total", classification="success", status_code="200") == 3  # incl. gRPC NotFound
    assert value(found, "response_total", classification="success", status_code="404") == 1
    assert value(found, "response_total", classification="failure", status_code="503") == 1
    assert value(found, "response_total", classification="failure", status_code="200") == 1  # gRPC Unavailable
    assert value(found, "response_total", classification="failure") == 1  # no response: no status_code


def test_latency_histogram_uses_linkerds_buckets():
    m = Metrics("cluster-1")
    s = m.series(**OUT)
    for ms in (0.5, 1.0, 1.5, 47.0, 50.0, 51.0, 60000.0):
        s.response(200, ms)
    found = samples(m)
    buckets = {sm.labels["le"]: sm.value for sm in found["response_latency_ms_bucket"]}
    assert list(buckets) == [str(b) for b in LATENCY_BUCKETS_MS] + ["+Inf"]
    assert buckets["1"] == 2 and buckets["2"] == 3 and buckets["40"] == 3
    assert buckets["50"] == 5 and buckets["100"] == 6 and buckets["50000"] == 6 and buckets["+Inf"] == 7
    assert value(found, "response_latency_ms_count") == 7
    assert value(found, "response_latency_ms_sum") == 0.5 + 1.0 + 1.5 + 47.0 + 50.0 + 51.0 + 60000.0


def test_exchange_counts_a_request_and_its_response_as_both_calls_do():
    one, both = Metrics("cluster-1"), Metrics("cluster-1")
    for code, ms, error in ((200, 0.5, ""), (503, 12.0, ""), (200, 51.0, "stream"), (0, 3.0, "upstream")):
        one.series(**OUT).exchange(code, ms, error)
        s = both.series(**OUT)
        s.request()
        s.response(code, ms, error=error)
    assert one.render() == both.render()
    found = samples(one)
    assert value(found, "request_total") == 4
    assert value(found, "response_total", classification="failure", status_code="200") == 1  # broken stream
    assert value(found, "response_latency_ms_bucket", le="50") == 3  # 0.5, 3.0 and 12.0


def test_series_are_kept_apart_by_labels():
    m = Metrics("cluster-1")
    m.series(**OUT).request()
    m.series(**{**OUT, "tls": False, "dst_cluster": "cluster-1"}).request()
    found = samples(m)
    assert value(found, "request_total") == 1
    assert value(found, "request_total", tls="false", dst_cluster="cluster-1") == 1


def test_tcp_connections():
    m = Metrics("cluster-1")
    t = m.tcp(**OUT)
    t.open()
    t.open()
    t.close(bytes_in=100, bytes_out=2500)
    found = samples(m)
    assert value(found, "tcp_open_total") == 2
    assert value(found, "tcp_close_total") == 1
    assert value(found, "tcp_open_connections") == 1
    assert value(found, "tcp_read_bytes_total") == 100
    assert value(found, "tcp_write_bytes_total") == 2500


def test_gateway_alive_and_probe_latency():
    m = Metrics("cluster-1")
    m.set_gateway("cluster-3", True, 3.5)
    m.set_gateway("cluster-3", False, None)
    m.set_gateway("cluster-2", True, 12.0)
    found = samples(m)
    alive = {s.labels["target_cluster_name"]: s.value for s in found["gateway_alive"]}
    assert alive == {"cluster-2": 1, "cluster-3": 0}
    count = {s.labels["target_cluster_name"]: s.value for s in found["gateway_probe_latency_ms_count"]}
    assert count == {"cluster-2": 1, "cluster-3": 1}
    assert all(s.labels["cluster"] == "cluster-1" for s in found["gateway_alive"])


def test_label_values_are_escaped():
    m = Metrics('we"ird\\clu\nster')
    m.series(**OUT).request()
    (s,) = samples(m)["request_total"]
    assert s.labels["cluster"] == 'we"ird\\clu\nster'


def test_families_have_linkerd_types():
    m = Metrics("cluster-1")
    m.series(**OUT).response(200, 1.0)
    m.tcp(**OUT).open()
    types = {f.name: f.type for f in text_string_to_metric_families(m.render())}
    assert types["request"] == "counter" and types["response"] == "counter"
    assert types["response_latency_ms"] == "histogram"
    assert types["tcp_open_connections"] == "gauge" and types["gateway_alive"] == "gauge"
