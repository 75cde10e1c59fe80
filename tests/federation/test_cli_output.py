"""The pure parts of curl / load / tap / stat: URLs, durations, headers, and what they print."""
import argparse

import pytest

from controller.demo.client import LoadReport, outbound_address, request_headers, split_url
from controller.errors import InvalidResource, Unavailable
from controller.interface import GoldenRow
from meshtui.cli.commands.curl import parse_headers
from meshtui.cli.commands.load import duration, report_text
from meshtui.cli.commands.stat import selected, stat_table
from meshtui.cli.commands.tap import tap_line
from meshtui.cli.errors import UsageError
from proxy.events import TapEvent


def test_urls_become_authority_and_target():
    assert split_url("http://httpbin.httpbin:8080/") == ("httpbin.httpbin:8080", "/")
    assert split_url("httpbin.httpbin/a/b?x=1") == ("httpbin.httpbin", "/a/b?x=1")
    with pytest.raises(InvalidResource, match="only http://"):
        split_url("https://httpbin.httpbin/")
    assert request_headers("a.b:80", [("X-T", "1")], "curl") == {"Host": "a.b:80", "X-T": "1", "x-meshtui-service-account": "curl"}


def test_outbound_address_from_status_or_loopback():
    c = {"metadata": {"name": "c1", "annotations": {"meshtui.io/loopback": "127.9.11"}}}
    assert outbound_address(c) == "127.9.11.1:4140"
    assert outbound_address({**c, "status": {"outbound": {"address": "127.0.0.5:1"}}}) == "127.0.0.5:1"
    with pytest.raises(Unavailable, match="cluster k8s has no embedded outbound proxy"):
        outbound_address({"metadata": {"name": "k8s"}})


def test_durations_and_headers():
    assert [duration(t) for t in ("10", "10s", "500ms", "1m")] == [10.0, 10.0, 0.5, 60.0]
    with pytest.raises(argparse.ArgumentTypeError):
        duration("soon")
    assert parse_headers(["X-A: 1", "B:two:three"]) == [("X-A", "1"), ("B", "two:three")]
    with pytest.raises(UsageError, match="expected 'NAME: VALUE'"):
        parse_headers(["nocolon"])


def test_load_report_summarises_latency_and_answers():
    r = LoadReport(sent=4, elapsed_s=2.0, latencies_ms=[1.0, 2.0, 3.0, 40.0])
    r.statuses.update({200: 3, 503: 1})
    r.bodies.update({"Hi from c1": 2, "Hi from c3": 1, "no endpoints": 1})
    assert r.success_rate == 0.75 and r.quantile(0.5) == 2.0 and r.quantile(0.99) == 40.0
    text = report_text("http://a.b/", "c2", r)
    assert "4 requests in 2.0s (2.0 rps), success 75.00%" in text
    assert "p50 2.0ms  p95 40.0ms  p99 40.0ms" in text and "200=3 503=1" in text
    assert text.splitlines()[-3].split() == ["2", "Hi", "from", "c1"]


def test_tap_lines_look_like_linkerd_viz_tap():
    e = TapEvent(id="c2:outbound:7", kind="request_init", direction="outbound", cluster="c2", src_cluster="c2",
                 dst_cluster="c1", dst_endpoint="127.0.11.1:4143", method="GET", authority="h.ns:8080", path="/x")
    assert tap_line(e) == ("req id=c2:outbound:7 proxy=out cluster=c2 src=c2 dst=c1/127.0.11.1:4143 tls=false "
                           ":method=GET :authority=h.ns:8080 :path=/x")
    e.kind, e.status, e.latency_ms = "response_init", 200, 1.5
    assert tap_line(e).endswith(":status=200 latency=1500µs")
    e.kind, e.duration_ms, e.bytes, e.error = "response_end", 2.25, 48, "reset"
    assert tap_line(e).endswith("duration=2250µs response-length=48B error='reset'")


def test_stat_selects_and_tabulates():
    rows = [GoldenRow("service", "10s", cluster="c1", namespace="ns", service="web", requests=10, success_rate=0.9,
                      rps=1.0, p50_ms=2.0, p95_ms=12.0, p99_ms=None),
            GoldenRow("edge", "10s", cluster="c1", namespace="ns", service="web", src_cluster="c2", dst_cluster="c1"),
            GoldenRow("service", "10s", cluster="c3", namespace="ns", service="web")]
    assert selected(rows, "service", "c1") == rows[:1]
    assert selected(rows, "edge", "c2") == rows[1:2]
    lines = stat_table(selected(rows, "service", None), "service").splitlines()
    assert lines[0].split() == ["CLUSTER", "NAMESPACE", "SERVICE", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]
    assert lines[1].split() == ["c1", "ns", "web", "90.00%", "1.0", "2.0ms", "12ms", "-"]
    assert lines[2].split()[3:] == ["-", "0.0", "-", "-", "-"]
