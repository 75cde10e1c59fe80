"""The HTTP/2 relay in one process: a real gRPC client (grpcio) or the test HTTP/2 client,
the proxy, and grpc-echo / h2-echo backends on loopback."""
from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest

from proxy.config import Endpoint
from proxy.events import TapFilter
from tests.h2.h2client import H2TestClient
from tests.h2.support import CLUSTER, channel, config, grpc_backends, h2_backends, proxy, route
from tests.proxy.http_support import dead_port

pytestmark = pytest.mark.timeout(30)
AUTHORITY = "grpc-echo.demo:9090"


async def test_each_call_of_one_channel_is_balanced_on_its_own():
    async with grpc_backends("a", "b", "c") as backends:
        async with proxy(config(route("grpc-echo", [b.endpoint for b in backends]))) as plane:
            async with channel(plane, AUTHORITY) as ch:
                say = ch.unary_unary("/meshtui.Echo/Say")
                replies = [await say(b"%d" % i, timeout=5) for i in range(30)]
            assert plane.protocols.h2_pools.connections() == 3  # one multiplexed connection per backend
    assert Counter(r.split(b"|")[0] for r in replies) == {b"a": 10, b"b": 10, b"c": 10}
    assert all(r.split(b"|")[1] == b"%d" % i for i, r in enumerate(replies))


async def test_concurrent_calls_share_one_upstream_connection():
    async with grpc_backends("a") as backends:
        async with proxy(config(route("grpc-echo", [backends[0].endpoint]))) as plane:
            async with channel(plane, AUTHORITY) as ch:
                say = ch.unary_unary("/meshtui.Echo/Say")
                replies = await asyncio.gather(*(say(b"%d" % i, timeout=5) for i in range(50)))
            assert plane.protocols.h2_pools.opened == 1
    assert sorted(replies) == sorted(b"a|%d" % i for i in range(50))


async def test_grpc_failures_feed_metrics_tap_and_outlier_ejection():
    async with grpc_backends("good") as good, grpc_backends("bad", error_rate=1.0) as bad:
        endpoints = [good[0].endpoint, bad[0].endpoint]
        async with proxy(config(route("grpc-echo", endpoints))) as plane:
            sub = plane.tap.subscribe(TapFilter(kinds=("response_end",)))
            async with channel(plane, AUTHORITY) as ch:
                say = ch.unary_unary("/meshtui.Echo/Say")
                outcomes = []
                for i in range(30):
                    try:
                        outcomes.append((await say(b"x", timeout=5)).split(b"|")[0].decode())
                    except grpc.aio.AioRpcError as exc:
                        outcomes.append(exc.code().name)
            health = {e["address"]: e for e in plane.health.snapshot()}
            events = [await asyncio.wait_for(sub.__anext__(), 2) for _ in range(30)]
            sub.close()
            metrics = plane.metrics.render()
    # round robin alternates until 5 failures in a row eject the failing backend
    assert outcomes[:10] == ["good", "INTERNAL"] * 5
    assert outcomes[10:] == ["good"] * 20
    assert health[bad[0].endpoint.address]["ejections"] == 1
    assert health[bad[0].endpoint.address]["available"] is False
    assert 'classification="failure",status_code="200"} 5' in metrics
    assert 'classification="success",status_code="200"} 25' in metrics
    assert {(e.kind, e.status, e.path) for e in events} == {("response_end", 200, "/meshtui.Echo/Say")}
    assert Counter(e.grpc_status for e in events) == {0: 25, 13: 5}
    assert {e.dst_endpoint for e in events if e.grpc_status == 13} == {bad[0].endpoint.address}


async def test_a_deadline_shorter_than_the_route_timeout_is_enforced_by_the_proxy():
    async with grpc_backends("slow", latency_ms=2000) as backends:
        async with proxy(config(route("grpc-echo", [backends[0].endpoint], timeout_ms=10_000))) as plane:
            client = await H2TestClient.connect(plane.addresses()["outbound"])
            loop = asyncio.get_running_loop()
            started = loop.time()
            reply = await client.request(AUTHORITY, "/meshtui.Echo/Say", method="POST", body=b"\0\0\0\0\1x",
                                         headers=[(b"content-type", b"application/grpc"), (b"te", b"trailers"),
                                                  (b"grpc-timeout", b"200m")])
            elapsed = loop.time() - started
            await client.close()
    assert reply.header(b"grpc-status") == b"4"  # DEADLINE_EXCEEDED, answered by the proxy
    assert b"deadline of 200 ms exceeded at the proxy" in reply.header(b"grpc-message")
    assert 0.15 < elapsed < 1.5


async def test_the_route_timeout_applies_when_it_is_the_shorter():
    async with grpc_backends("slow", latency_ms=2000) as backends:
        async with proxy(config(route("grpc-echo", [backends[0].endpoint], timeout_ms=150))) as plane:
            async with channel(plane, AUTHORITY) as ch:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await ch.unary_unary("/meshtui.Echo/Say")(b"x", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "did not answer within 150 ms" in info.value.details()


async def test_a_call_is_retried_on_another_endpoint_when_connecting_fails():
    async with grpc_backends("live") as backends:
        dead = Endpoint("127.0.0.1", dead_port(), CLUSTER)
        async with proxy(config(route("grpc-echo", [dead, backends[0].endpoint]))) as plane:
            async with channel(plane, AUTHORITY) as ch:
                say = ch.unary_unary("/meshtui.Echo/Say")
                replies = [await say(b"%d" % i, timeout=5) for i in range(6)]
            ejections = {e["address"]: e["ejections"] for e in plane.health.snapshot()}
    assert replies == [b"live|%d" % i for i in range(6)]
    # each call tried the dead endpoint first (the retry moved the cursor past the live one):
    # five connect failures in a row ejected it
    assert ejections == {dead.address: 1, backends[0].endpoint.address: 0}


async def test_server_streaming_passes_through():
    async with grpc_backends("s", stream_interval_ms=5) as backends:
        async with proxy(config(route("grpc-echo", [backends[0].endpoint]))) as plane:
            async with channel(plane, AUTHORITY) as ch:
                got = [m async for m in ch.unary_stream("/meshtui.Echo/Count")(b"40", timeout=5)]
    assert got == [b"s|%d" % i for i in range(40)]


async def test_large_bodies_stream_both_ways_with_flow_control():
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB, far above the windows
    async with h2_backends("h") as backends:
        async with proxy(config(route("h2-echo", [backends[0].endpoint], protocol="http2", port=8081))) as plane:
            client = await H2TestClient.connect(plane.addresses()["outbound"])
            replies = await asyncio.gather(*(client.request("h2-echo.demo:8081", "/up", method="POST",
                                                            body=body, timeout=20) for _ in range(3)))
            get = await client.request("h2-echo.demo:8081", "/")
            await client.close()
    assert [(r.status, len(r.body)) for r in replies] == [(200, len(body))] * 3
    assert all(r.body == body for r in replies)
    assert (get.status, get.body) == (200, b"h\n")


async def test_requests_the_proxy_cannot_route_get_a_reason():
    async with h2_backends("h") as backends:
        cfg = config(route("h2-echo", [backends[0].endpoint], protocol="http2", port=8081),
                     route("web", [backends[0].endpoint], protocol="http", port=80))
        async with proxy(cfg) as plane:
            client = await H2TestClient.connect(plane.addresses()["outbound"])
            unknown = await client.request("nowhere.demo:80", "/")
            http1 = await client.request("web.demo", "/")
            grpc_unknown = await client.request("nowhere.demo:80", "/x.Y/Z", method="POST", body=b"\0\0\0\0\0",
                                                headers=[(b"content-type", b"application/grpc")])
            await client.close()
    assert unknown.status == 503 and b"no route for nowhere.demo:80" in unknown.body
    assert http1.status == 505 and b"web.demo:80 is an HTTP/1.1 service" in http1.body
    assert grpc_unknown.header(b"grpc-status") == b"14"  # UNAVAILABLE, with the reason as its message
    assert b"no route for nowhere.demo:80" in grpc_unknown.header(b"grpc-message")
