"""The pure parts of the HTTP/2 relay: gRPC deadlines and statuses, request heads."""
from __future__ import annotations

from urllib.parse import unquote

import pytest

from proxy.http2 import grpc
from proxy.http2.messages import BadRequest, parse_request, request_head, response_head
from proxy.http2.settings import LongLived


@pytest.mark.parametrize("value, seconds", [(b"5S", 5.0), (b"200m", 0.2), (b"1H", 3600.0), (b"3M", 180.0),
                                            (b"250u", 250e-6), (b"99999999n", 0.099999999)])
def test_grpc_timeouts(value, seconds):
    assert grpc.parse_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [b"", b"5", b"S", b"123456789S", b"5s", b"-5S", b"1.5S"])
def test_malformed_grpc_timeouts_are_refused_by_name(value):
    with pytest.raises(ValueError, match="grpc-timeout"):
        grpc.parse_timeout(value)


def test_grpc_failure_codes_are_linkerds():
    assert [c for c in range(17) if grpc.failed(c)] == [2, 4, 13, 14, 15]
    assert not grpc.failed(None)


def test_error_responses_carry_a_percent_encoded_message():
    head = dict(grpc.error_response(14, "no route for x.y: 100% gone\n"))
    assert head[b":status"] == b"200" and head[b"grpc-status"] == b"14"
    assert head[b"grpc-message"] == b"no route for x.y: 100%25 gone%0A"
    assert unquote(head[b"grpc-message"].decode()) == "no route for x.y: 100% gone\n"


def test_request_heads_lose_connection_and_mesh_fields():
    req = parse_request([(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"svc.ns:9090"),
                         (b":path", b"/pkg.Svc/Call"), (b"content-type", b"application/grpc+proto"),
                         (b"te", b"trailers"), (b"grpc-timeout", b"150m"), (b"x-meshtui-service-account", b"web"),
                         (b"x-meshtui-src-cluster", b"evil"), (b"connection", b"keep-alive"), (b"x-app", b"1")])
    assert (req.grpc, req.deadline_s, req.account, req.src_cluster) == (True, 0.15, b"web", b"evil")
    assert request_head(req, b"/prefix/pkg.Svc/Call", [(b"x-extra", b"2")]) == [
        (b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"svc.ns:9090"),
        (b":path", b"/prefix/pkg.Svc/Call"), (b"content-type", b"application/grpc+proto"), (b"te", b"trailers"),
        (b"grpc-timeout", b"150m"), (b"x-app", b"1"), (b"x-extra", b"2")]


@pytest.mark.parametrize("head, why", [
    ([(b":path", b"/")], "no :method"),
    ([(b":method", b"GET"), (b":authority", b"a.b")], "no :path"),
    ([(b":method", b"GET"), (b":path", b"/")], "no :authority"),
    ([(b":method", b"CONNECT"), (b":authority", b"a.b:1")], "CONNECT"),
    ([(b":method", b"GET"), (b":path", b"/"), (b":authority", b"a.b"), (b"grpc-timeout", b"soon")], "grpc-timeout"),
])
def test_bad_request_heads_say_why(head, why):
    with pytest.raises(BadRequest, match=why):
        parse_request(head)


def test_response_heads_keep_the_status_and_drop_connection_fields():
    assert response_head([(b":status", b"200"), (b"connection", b"close"), (b"grpc-status", b"0")]) == (
        200, [(b":status", b"200"), (b"grpc-status", b"0")])


def test_long_lived_settings_are_validated():
    with pytest.raises(ValueError, match="h2_keepalive_s must be >= 0"):
        LongLived(h2_keepalive_s=-1)
    with pytest.raises(ValueError, match="h2_idle_timeout_s must be > 0"):
        LongLived(h2_idle_timeout_s=0)
