"""The outbound proxy on real sockets: per-request balancing, keep-alive pools,
retries, 502/503/504 bodies, streaming, gateway hops."""
from __future__ import annotations

import asyncio
import contextvars
import hashlib

import aiohttp

from proxy.admin import LiveConfig
from proxy.config import Endpoint
from proxy.events import TapFilter
from proxy.http1.pool import Pools
from proxy.http1.relay import Relay
from proxy.http1.server import HttpServer, Request, Response
from proxy.metrics import Metrics
from proxy.outbound import OutboundProxy
from proxy.routing.health import EndpointHealth
from proxy.samples.echo import serve_echo
from proxy.tap import TapHub
from tests.proxy.http_support import (
    config, data_plane, dead_port, endpoint, gateway_rule, read_head, read_response, reset, route, text_handler,
    upstreams, url,
)

HOST = {"Host": "httpbin.httpbin:8080"}


def one_route(*ports: int, cluster: str = "c1", **extra) -> dict:
    return config(cluster, [route("httpbin", "httpbin", 8080, [[(cluster, [endpoint(p, cluster) for p in ports])]],
                                  **extra)])


async def get(session: aiohttp.ClientSession, plane, path: str = "/", **kw) -> tuple[int, str]:
    async with session.get(url(plane, "outbound", path), headers=kw.pop("headers", HOST), **kw) as r:
        return r.status, await r.text()


async def bodies_on_one_connection(plane, n: int) -> list[bytes]:
    """The bodies of `n` GETs sent one after the other on one client connection."""
    reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
    try:
        bodies = []
        for _ in range(n):
            writer.write(b"GET / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\n\r\n")
            bodies.append((await read_response(reader))[2])
        return bodies
    finally:
        writer.close()


async def test_each_request_on_one_client_connection_is_balanced():
    async with upstreams(text_handler("a"), text_handler("b")) as (a, b):
        async with data_plane("c1", one_route(a.port, b.port, balancer="round-robin")) as plane:
            answers = await bodies_on_one_connection(plane, 10)
            assert sorted(set(answers)) == [b"a\n", b"b\n"]
            assert answers.count(b"a\n") == 5


async def test_each_tapped_request_names_the_endpoint_that_answered_it():
    """The tap's per-endpoint shared fields (the relay's TapRoute cache, last one first) follow
    the balancer from one request to the next on one client connection."""
    async with upstreams(text_handler("a"), text_handler("b")) as (a, b):
        async with data_plane("c1", one_route(a.port, b.port, balancer="round-robin")) as plane:
            sub = plane.tap.subscribe(TapFilter())
            answers = await bodies_on_one_connection(plane, 6)
            events = [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(18)]
            ends = [e for e in events if e.kind == "response_end"]
            port = {b"a\n": a.port, b"b\n": b.port}
            assert answers.count(b"a\n") == answers.count(b"b\n") == 3
            assert [e.dst_endpoint for e in ends] == [f"127.0.0.1:{port[answer]}" for answer in answers]
            assert len({e.id for e in ends}) == 6


async def test_upstream_connections_are_kept_alive_and_reused():
    async with upstreams(text_handler("a")) as (a,):
        async with data_plane("c1", one_route(a.port)) as plane, aiohttp.ClientSession() as s:
            for _ in range(30):
                assert await get(s, plane) == (200, "a\n")
            assert a.connections == 1
            assert plane.pools.opened == 1


async def test_idempotent_requests_are_retried_away_from_a_dead_endpoint():
    async with upstreams(text_handler("alive")) as (alive,):
        async with data_plane("c1", one_route(dead_port(), alive.port, balancer="round-robin")) as plane, \
                aiohttp.ClientSession() as s:
            results = [await get(s, plane) for _ in range(20)]
            assert results == [(200, "alive\n")] * 20
            dead = [e for e in plane.health.snapshot() if e["address"] != f"127.0.0.1:{alive.port}"]
            assert dead[0]["failures"] + dead[0]["ejections"] >= 1


async def test_put_with_a_body_is_retried_with_its_body():
    server = await serve_echo("127.0.0.1", 0, message="x")
    try:
        async with data_plane("c1", one_route(dead_port(), server.address[1], balancer="round-robin")) as plane, \
                aiohttp.ClientSession() as s:
            for i in range(10):
                async with s.put(url(plane, "outbound"), headers=HOST, data=b"data-%d" % i) as r:
                    assert (r.status, await r.read()) == (200, b"data-%d" % i)
    finally:
        await server.shutdown(0.5)


async def test_post_is_not_retried_and_gets_502_naming_the_failure():
    port = dead_port()
    async with data_plane("c1", one_route(port)) as plane, aiohttp.ClientSession() as s:
        async with s.post(url(plane, "outbound"), headers=HOST, data=b"x") as r:
            assert r.status == 502
            assert f"connect to 127.0.0.1:{port} failed" in await r.text()


async def test_unroutable_is_503_with_the_reason():
    cfg = config("c1", [route("httpbin", "httpbin", 8080, [])])
    async with data_plane("c1", cfg) as plane, aiohttp.ClientSession() as s:
        status, text = await get(s, plane)
        assert status == 503
        assert text.startswith("no local endpoints for httpbin.httpbin:8080")
        status, text = await get(s, plane, headers={"Host": "nope.nowhere"})
        assert (status, text) == (503, "no route for nope.nowhere: not a service known in cluster c1\n")


async def test_slow_upstream_gets_504_after_the_route_timeout():
    async def slow(req: Request, resp: Response) -> None:
        await asyncio.sleep(1.0)
        resp.send(200, [], b"late")

    async with upstreams(slow) as (up,):
        async with data_plane("c1", one_route(up.port, timeout_ms=200)) as plane, aiohttp.ClientSession() as s:
            status, text = await get(s, plane)
            assert status == 504
            assert text == f"upstream 127.0.0.1:{up.port} did not answer within 200 ms\n"


async def test_upstream_5xx_is_passed_on_and_counts_against_the_endpoint():
    server = await serve_echo("127.0.0.1", 0, message="x", error_rate=1.0)
    try:
        async with data_plane("c1", one_route(server.address[1])) as plane, aiohttp.ClientSession() as s:
            assert await get(s, plane) == (500, "injected error\n")
            (snap,) = plane.health.snapshot()
            assert snap["failures"] == 1
    finally:
        await server.shutdown(0.5)


async def test_chunked_bodies_stream_both_ways():
    server = await serve_echo("127.0.0.1", 0, message="x")
    try:
        async with data_plane("c1", one_route(server.address[1])) as plane:
            reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
            writer.write(b"POST / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"3\r\nabc\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"4\r\ndefg\r\n0\r\n\r\n")
            status, headers, body = await read_response(reader)
            assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"abcdefg")
            writer.close()
    finally:
        await server.shutdown(0.5)


async def test_large_body_passes_through_intact():
    server = await serve_echo("127.0.0.1", 0, message="x")
    payload = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB
    try:
        async with data_plane("c1", one_route(server.address[1])) as plane, aiohttp.ClientSession() as s:
            async with s.put(url(plane, "outbound"), headers=HOST, data=payload) as r:
                assert r.status == 200
                assert hashlib.sha256(await r.read()).digest() == hashlib.sha256(payload).digest()
    finally:
        await server.shutdown(0.5)


async def test_head_and_expect_continue_through_the_proxy():
    server = await serve_echo("127.0.0.1", 0, message="hello")
    try:
        async with data_plane("c1", one_route(server.address[1])) as plane:
            reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
            writer.write(b"HEAD / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\n\r\n")
            status, headers, _ = await read_response(reader, head_request=True)
            assert (status, headers["content-length"]) == (200, "6")
            writer.write(b"PUT / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\nContent-Length: 4\r\n"
                         b"Expect: 100-continue\r\n\r\n")
            assert (await read_head(reader))[0] == 100
            writer.write(b"body")
            status, _, body = await read_response(reader)
            assert (status, body) == (200, b"body")
            writer.close()
    finally:
        await server.shutdown(0.5)


async def test_remote_endpoint_goes_through_the_gateway_with_the_path_prefix():
    async with upstreams(text_handler("from c1")) as (up,):
        gw_cfg = config("c1", gateway=[gateway_rule("/c1/httpbin-mesh", "httpbin", "httpbin", 8080,
                                                    [endpoint(up.port, "c1")])])
        async with data_plane("c1", gw_cfg, outbound=False, gateway=True) as c1:
            gw_port = c1.servers["gateway"].address[1]
            out_cfg = config("c2", [route("httpbin", "httpbin", 8080, [[("c1", [
                endpoint(gw_port, "c1", gateway=True, prefix="/c1/httpbin-mesh")])]])])
            async with data_plane("c2", out_cfg) as c2, aiohttp.ClientSession() as s:
                headers = {**HOST, "x-meshtui-src-cluster": "forged"}
                assert await get(s, c2, "/get?x=1", headers=headers) == (200, "from c1\n")
        assert up.targets == [b"/get?x=1"]
        # the plain-mode caller header was set by the outbound proxy, read and removed by the gateway
        assert all(name.lower() != b"x-meshtui-src-cluster" for name, _ in up.headers[0])


async def test_plain_mode_caller_header_is_not_forwarded_to_local_endpoints():
    async with upstreams(text_handler("a")) as (a,):
        async with data_plane("c1", one_route(a.port)) as plane, aiohttp.ClientSession() as s:
            await get(s, plane, headers={**HOST, "X-Meshtui-Src-Cluster": "forged", "X-Keep": "1"})
    names = [n.lower() for n, _ in a.headers[0]]
    assert b"x-keep" in names and b"x-meshtui-src-cluster" not in names


async def test_absolute_form_target_is_routed_by_its_authority():
    async with upstreams(text_handler("a")) as (a,):
        async with data_plane("c1", one_route(a.port)) as plane:
            async with aiohttp.ClientSession() as s:
                # aiohttp's proxy= sends the absolute form, as curl -x does
                async with s.get("http://httpbin.httpbin:8080/p?q=1", proxy=url(plane, "outbound")) as r:
                    assert (r.status, await r.text()) == (200, "a\n")
    assert a.targets == [b"/p?q=1"]


async def test_client_leaving_mid_request_ends_the_attempt_and_the_upstream_connection():
    async def slow(req: Request, resp: Response) -> None:
        await asyncio.sleep(2)
        resp.send(200, [], b"late")

    async with upstreams(slow) as (up,):
        async with data_plane("c1", one_route(up.port)) as plane:
            reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
            writer.write(b"GET / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\n\r\n")
            await asyncio.sleep(0.2)
            assert plane.health.snapshot()[0]["inflight"] == 1
            reset(writer)
            await asyncio.sleep(0.2)
            (snap,) = plane.health.snapshot()
            assert (snap["inflight"], snap["failures"]) == (0, 0)
            assert len(up.server.connections) == 0  # the upstream request was abandoned too


async def test_tap_shows_each_attempt_and_proxy_answers():
    async def drain(sub, n):
        return [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(n)]

    async with upstreams(text_handler("alive")) as (alive,):
        dead = dead_port()
        cfg = config("c1", [
            route("httpbin", "httpbin", 8080, [[("c1", [endpoint(dead, "c1")])], [("c1", [endpoint(alive.port, "c1")])]]),
            route("empty", "httpbin", 8080, []),
        ])
        async with data_plane("c1", cfg) as plane, aiohttp.ClientSession() as s:
            sub = plane.tap.subscribe(TapFilter())
            status, text = await get(s, plane, headers={"Host": "empty.httpbin:8080"})
            assert status == 503
            init, end = await drain(sub, 2)
            assert (init.kind, end.kind, init.id) == ("request_init", "response_end", end.id)
            assert end.status == 503 and end.error + "\n" == text

            assert await get(s, plane) == (200, "alive\n")  # the local tier's endpoint is dead: retried
            events = await drain(sub, 5)
            assert [e.kind for e in events] == ["request_init", "response_end", "request_init", "response_init",
                                                "response_end"]
            assert events[1].status == 0 and events[1].error.startswith(f"connect to 127.0.0.1:{dead} failed")
            assert events[4].status == 200 and events[4].dst_endpoint == f"127.0.0.1:{alive.port}"
            sub.close()



async def test_hashing_keeps_each_client_on_one_endpoint():
    names = "abcd"
    async with upstreams(*(text_handler(n) for n in names)) as ups:
        async with data_plane("c1", one_route(*(u.port for u in ups), balancer="hashing")) as plane:
            host, port = plane.servers["outbound"].address
            chosen = set()
            for client in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"):
                connector = aiohttp.TCPConnector(local_addr=(client, 0), force_close=True)  # a new connection each
                async with aiohttp.ClientSession(connector=connector) as s:
                    answers = {await get(s, plane) for _ in range(5)}
                assert len(answers) == 1, f"{client} was spread over {answers}"
                chosen |= answers
            assert len(chosen) > 1  # and the clients did not all land on one endpoint


async def test_a_new_config_reaches_an_open_client_connection():
    async with upstreams(text_handler("old"), text_handler("new")) as (old, new):
        async with data_plane("c1", one_route(old.port)) as plane:
            reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
            request = b"GET / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\n\r\n"
            writer.write(request)
            assert (await read_response(reader))[2] == b"old\n"
            plane.live.apply(one_route(new.port), persist=False)
            writer.write(request)
            assert (await read_response(reader))[2] == b"new\n"
            plane.live.apply(config("c1"), persist=False)
            writer.write(request)
            status, _, body = await read_response(reader)
            assert (status, body) == (503, b"no route for httpbin.httpbin:8080: not a service known in cluster c1\n")
            writer.close()


async def test_a_slow_client_holds_back_the_upstream_response():
    written = 0

    async def firehose(req: Request, resp: Response) -> None:
        nonlocal written
        resp.start(200, [], 512 * 65536)
        block = b"z" * 65536
        for _ in range(512):  # 32 MiB
            resp.write(block)
            written += len(block)
            if resp.paused:
                await resp.drain()
        resp.end()

    async with upstreams(firehose) as (up,):
        async with data_plane("c1", one_route(up.port)) as plane:
            reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address, limit=65536)
            writer.write(b"GET / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\n\r\n")
            await asyncio.sleep(0.5)
            assert written < 16 * 1024 * 1024, "the proxy took the whole response for a client that does not read"
            status, _, body = await read_response(reader, timeout=20)
            assert (status, len(body)) == (200, 32 * 1024 * 1024)
            writer.close()


async def test_a_slow_upstream_holds_back_the_client_request_body():
    may_read = asyncio.Event()

    async def slow_reader(req: Request, resp: Response) -> None:
        await may_read.wait()
        digest = hashlib.sha256()
        while chunk := await req.body.read():
            digest.update(chunk)
        resp.send(200, [], digest.hexdigest().encode())

    payload = bytes(range(256)) * (32 * 1024 * 1024 // 256)
    async with upstreams(slow_reader) as (up,):
        async with data_plane("c1", one_route(up.port)) as plane:
            reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
            writer.transport.set_write_buffer_limits(high=64 * 1024)
            writer.write(b"POST / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\nContent-Length: %d\r\n\r\n" % len(payload))

            async def send() -> None:
                view = memoryview(payload)
                for i in range(0, len(payload), 256 * 1024):
                    writer.write(view[i:i + 256 * 1024])
                    await writer.drain()

            sending = asyncio.create_task(send())
            await asyncio.sleep(0.5)
            assert not sending.done(), "the proxy took 32 MiB that its upstream did not read"
            may_read.set()
            await asyncio.wait_for(sending, 20)
            status, _, body = await read_response(reader, timeout=20)
            assert (status, body) == (200, hashlib.sha256(payload).hexdigest().encode())
            writer.close()


async def test_a_retry_runs_in_the_context_of_its_request():
    """The pool's `tls_for` may depend on context variables the handler set (the caller's
    identity): a retry started from the callback of a connection an earlier request
    opened still sees its own request's."""
    caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")
    seen: list[str] = []

    def tls_for(ep: Endpoint) -> tuple[None, str]:
        seen.append(caller.get())
        return None, ""

    connections = 0

    async def answers_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        if connections == 1:  # the first connection answers one request, then hangs up on the next
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\na\n")
            await reader.readuntil(b"\r\n\r\n")
        writer.close()

    flaky = await asyncio.start_server(answers_once, "127.0.0.1", 0)
    async with upstreams(text_handler("b")) as (b,):
        cfg = config("c1", [route("httpbin", "httpbin", 8080, [
            [("c1", [endpoint(flaky.sockets[0].getsockname()[1], "c1")])], [("c1", [endpoint(b.port, "c1")])]])])
        health = EndpointHealth()
        live = LiveConfig("c1", health)
        live.apply(cfg, persist=False)
        pools = Pools(tls_for=tls_for)
        relay = Relay(cluster="c1", direction="outbound", health=health, metrics=Metrics("c1"), tap=TapHub(),
                      pools=pools)
        outbound = OutboundProxy(cluster="c1", routes=live, relay=relay)

        def handler(req: Request, resp: Response) -> None:
            caller.set(req.target.decode())
            outbound(req, resp)

        server = await HttpServer(handler).listen("127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(*server.address)
            for path, answer in ((b"/alice", b"a\n"), (b"/bob", b"b\n")):
                writer.write(b"GET %s HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\n\r\n" % path)
                assert (await read_response(reader))[2] == answer
            writer.close()
        finally:
            await server.shutdown(0.5)
            pools.close()
            flaky.close()
    # /alice on the flaky endpoint; /bob on its pooled connection, again on a new one (stale),
    # then retried from that connection's callback on the other endpoint
    assert (seen, connections) == (["/alice", "/bob", "/bob"], 2)


async def test_a_host_with_trailing_whitespace_is_routed_by_its_value_on_either_path():
    async with upstreams(text_handler("a")) as (a,):
        async with data_plane("c1", one_route(a.port)) as plane:
            reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
            for head in (b"GET / HTTP/1.1\r\nHost: httpbin.httpbin:8080 \t\r\n\r\n",  # express
                         b"POST / HTTP/1.1\r\nHost: httpbin.httpbin:8080 \r\ncontent-length: 1\r\n\r\nx"):  # general
                writer.write(head)
                assert (await read_response(reader))[::2] == (200, b"a\n")
            writer.close()
