"""Long-lived HTTP/2 connections: idle timeouts count only time without a stream, keepalive
PINGs keep a quiet healthy client connected and find a dead one."""
from __future__ import annotations

import asyncio

import pytest

from proxy.http2.settings import LongLived
from tests.h2.h2client import H2TestClient
from tests.h2.support import channel, config, grpc_backends, h2_backends, proxy, route

pytestmark = pytest.mark.timeout(30)
H2_ECHO = "h2-echo.demo:8081"


def h2_route(backends):
    return config(route("h2-echo", [backends[0].endpoint], protocol="http2", port=8081))


async def test_a_connection_without_streams_is_closed_after_the_idle_timeout_with_a_goaway():
    async with h2_backends("h") as backends:
        async with proxy(h2_route(backends), longlived=LongLived(h2_idle_timeout_s=0.3, h2_keepalive_s=0)) as plane:
            client = await H2TestClient.connect(plane.addresses()["outbound"])
            assert (await client.request(H2_ECHO)).status == 200
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.wait_for(client.closed, 3)
            waited = loop.time() - started
            await client.close()
    assert client.goaway is not None and client.goaway.error_code == 0
    assert 0.2 < waited < 1.5


async def test_a_quiet_call_longer_than_the_idle_timeout_keeps_its_connection():
    async with grpc_backends("slow", latency_ms=1200) as backends:
        longlived = LongLived(h2_idle_timeout_s=0.3, h2_keepalive_s=0)
        async with proxy(config(route("grpc-echo", [backends[0].endpoint])), longlived=longlived) as plane:
            async with channel(plane, "grpc-echo.demo:9090") as ch:
                reply = await ch.unary_unary("/meshtui.Echo/Say")(b"patience", timeout=5)
    assert reply == b"slow|patience"


async def test_keepalive_pings_keep_a_quiet_healthy_client_connected():
    async with h2_backends("h") as backends:
        longlived = LongLived(h2_idle_timeout_s=60, h2_keepalive_s=0.15, h2_keepalive_timeout_s=0.3)
        async with proxy(h2_route(backends), longlived=longlived) as plane:
            client = await H2TestClient.connect(plane.addresses()["outbound"])
            await asyncio.sleep(1.2)
            assert not client.closed.done()
            reply = await client.request(H2_ECHO)
            await client.close()
    assert client.pings >= 3  # one each time it was quiet for 0.15 s, each answered
    assert reply.status == 200


async def test_a_client_that_stops_answering_pings_is_disconnected():
    async with h2_backends("h") as backends:
        longlived = LongLived(h2_idle_timeout_s=60, h2_keepalive_s=0.15, h2_keepalive_timeout_s=0.2)
        async with proxy(h2_route(backends), longlived=longlived) as plane:
            client = await H2TestClient.connect(plane.addresses()["outbound"])
            assert (await client.request(H2_ECHO)).status == 200
            client.silent = True  # reads and drops everything, answers nothing: a dead peer
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.wait_for(client.closed, 3)
            waited = loop.time() - started
            await client.close()
    assert 0.3 < waited < 2.0


async def test_a_grpc_channel_survives_the_idle_close_of_its_connection():
    async with grpc_backends("g") as backends:
        longlived = LongLived(h2_idle_timeout_s=0.2, h2_keepalive_s=0)
        async with proxy(config(route("grpc-echo", [backends[0].endpoint])), longlived=longlived) as plane:
            async with channel(plane, "grpc-echo.demo:9090") as ch:
                say = ch.unary_unary("/meshtui.Echo/Say")
                first = await say(b"1", timeout=5)
                await asyncio.sleep(0.8)  # the proxy closed the idle connection (GOAWAY)
                second = await say(b"2", timeout=5)
    assert (first, second) == (b"g|1", b"g|2")
