"""WebSocket upgrades through the outbound proxy and the gateway, in one process: a real
WebSocket server (aiohttp) as the endpoint, a real client (aiohttp), plain mode."""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
from aiohttp import web

from proxy.config import BackendGroup, Endpoint, GatewayRule, ServiceRoute
from proxy.events import TapFilter
from tests.h2.support import CLUSTER, config, proxy

pytestmark = pytest.mark.timeout(30)


@contextlib.asynccontextmanager
async def ws_echo(prefix: str):
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.headers.get("upgrade", "").lower() != "websocket":
            return web.Response(status=426, text="websocket only\n")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(f"{prefix}{request.path}:{msg.data}")
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def ws_route(name: str, *endpoints: Endpoint) -> ServiceRoute:
    return ServiceRoute("demo", name, 80, "http", "Locality", ((BackendGroup(CLUSTER, 100, endpoints),),))


async def test_websocket_through_the_outbound_proxy_and_a_gateway():
    async with ws_echo("echo") as port:
        local = Endpoint("127.0.0.1", port, CLUSTER)
        export = GatewayRule(path="/c1/chat", path_type="Prefix", namespace="demo", service="chat", port=80,
                             endpoints=(local,))
        async with proxy(config(ws_route("chat", local)), gateway=True) as plane:
            host, port = plane.addresses()["gateway"].split(":")
            via_gateway = Endpoint(host, int(port), "c9", gateway=True, path_prefix="/c1/chat")
            plane.live.apply(config(ws_route("chat", local), ws_route("chat-c9", via_gateway), gateway=(export,)),
                             persist=False)
            sub = plane.tap.subscribe(TapFilter(namespace="demo", kinds=("response_end",)))
            outbound = plane.addresses()["outbound"]
            async with aiohttp.ClientSession() as http:
                seen = {}
                for name in ("chat", "chat-c9"):
                    async with http.ws_connect(f"http://{outbound}/room/1", headers={"Host": f"{name}.demo"}) as ws:
                        await ws.send_str("hello")
                        first = await ws.receive_str(timeout=5)
                        await ws.send_bytes(b"\x00\x01" * 50_000)
                        echoed = await ws.receive_bytes(timeout=5)
                        seen[name] = (first, len(echoed))
                        assert plane.metrics.render().count("tcp_open_connections{") >= 1
                async with http.get(f"http://{outbound}/room/1", headers={"Host": "chat.demo"}) as r:
                    plain = (r.status, await r.text())
            # two tunnels from the outbound proxy, one from the gateway, the plain GET
            ends = [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(4)]
            sub.close()
            metrics = plane.metrics.render()
    assert seen == {"chat": ("echo/room/1:hello", 100_000), "chat-c9": ("echo/room/1:hello", 100_000)}
    assert plain == (426, "websocket only\n")  # not an upgrade: the HTTP/1.1 relay as before
    assert sorted((e.direction, e.status) for e in ends) == [("gateway", 101), ("outbound", 101), ("outbound", 101),
                                                             ("outbound", 426)]
    assert all(e.bytes > 100_000 for e in ends if e.status == 101)
    open_now = [line for line in metrics.splitlines() if line.startswith("tcp_open_connections{")]
    assert open_now and all(line.endswith(" 0") for line in open_now)  # every tunnel closed with its socket
    assert 'direction="gateway"' in metrics and 'status_code="101"' in metrics


async def test_an_upgrade_the_endpoint_refuses_is_answered_as_it_was():
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=403, text="not you\n")

    app = web.Application()
    app.router.add_get("/", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        local = Endpoint("127.0.0.1", runner.addresses[0][1], CLUSTER)
        async with proxy(config(ws_route("chat", local))) as plane:
            async with aiohttp.ClientSession() as http:
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await http.ws_connect(f"http://{plane.addresses()['outbound']}/", headers={"Host": "chat.demo"})
                with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
                    await http.ws_connect(f"http://{plane.addresses()['outbound']}/", headers={"Host": "nope.demo"})
    finally:
        await runner.cleanup()
    assert info.value.status == 403
    assert unknown.value.status == 503
