"""The upstream client and its keep-alive pools, against real loopback servers."""
from __future__ import annotations

import asyncio
import socket

import pytest

from proxy.config import Endpoint, Limits
from proxy.http1.client import (
    ConnectFailed, UpstreamConnection, UpstreamError, UpstreamReset, UpstreamTimeout,
)
from proxy.http1.pool import Pools
from proxy.http1.server import Request, Response
from tests.proxy.http_support import (
    client_context, dead_port, make_ca, make_leaf, server_context, start_upstream, text_handler, upstreams,
)


class Collect:
    """An exchange that gathers the response (status, body) into a future."""

    timeout_message = "no answer in time"

    def __init__(self) -> None:
        self.done: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.parts: list[bytes] = []

    def response_head(self, status: int, headers: list, length: int | None, connection: bytes) -> None:
        self.status = status

    def response_body(self, data: bytes) -> None:
        self.parts.append(data)

    def response_end(self) -> None:
        self.done.set_result((self.status, b"".join(self.parts)))

    def upstream_failed(self, exc: UpstreamError) -> None:
        self.done.set_exception(exc)

    def upstream_paused(self, paused: bool) -> None:
        pass


async def acquire(pools: Pools, ep: Endpoint) -> UpstreamConnection:
    key = pools.key(ep)
    return pools.idle(key) or await pools.connect(ep, key)


async def fetch(pools: Pools, ep: Endpoint, method: bytes = b"GET", target: bytes = b"/",
                timeout_s: float = 5.0) -> tuple[int, bytes]:
    conn = await acquire(pools, ep)
    exchange = Collect()
    try:
        conn.begin(method + b" " + target + b" HTTP/1.1\r\nhost: x\r\n\r\n", exchange,
                   head_request=method == b"HEAD", body=False, timeout_s=timeout_s)
        return await exchange.done
    finally:
        conn.finish()
        pools.release(conn)


def ep(port: int) -> Endpoint:
    return Endpoint("127.0.0.1", port, "c1")


async def test_idle_connections_are_reused():
    async with upstreams(text_handler("hi")) as (up,):
        pools = Pools()
        for _ in range(20):
            assert await fetch(pools, ep(up.port)) == (200, b"hi\n")
        assert up.connections == 1 and pools.opened == 1 and pools.idle_count() == 1
        pools.close()


async def test_concurrent_requests_open_one_connection_each_then_reuse_them():
    async def slow(req: Request, resp: Response) -> None:
        await asyncio.sleep(0.05)
        resp.send(200, [], b"ok")

    async with upstreams(slow) as (up,):
        pools = Pools()
        for _ in range(3):
            results = await asyncio.gather(*(fetch(pools, ep(up.port)) for _ in range(5)))
            assert results == [(200, b"ok")] * 5
        assert up.connections == 5
        pools.close()


async def test_head_response_does_not_eat_the_next_response():
    async with upstreams(text_handler("hello")) as (up,):
        pools = Pools()
        assert await fetch(pools, ep(up.port), b"HEAD") == (200, b"")
        assert await fetch(pools, ep(up.port)) == (200, b"hello\n")
        assert up.connections == 1
        pools.close()


async def test_chunked_response_is_read_whole():
    async def chunked(req: Request, resp: Response) -> None:
        resp.start(200, [], None)
        for part in (b"one ", b"two ", b"three"):
            resp.write(part)
            await asyncio.sleep(0.01)
        resp.end()

    async with upstreams(chunked) as (up,):
        pools = Pools()
        assert await fetch(pools, ep(up.port)) == (200, b"one two three")
        assert await fetch(pools, ep(up.port)) == (200, b"one two three")
        assert up.connections == 1
        pools.close()


async def test_close_delimited_response_ends_at_eof_and_is_not_reused():
    accepted = 0

    async def http10(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http10, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pools = Pools()
    try:
        assert await fetch(pools, ep(port)) == (200, b"until the end")
        assert await fetch(pools, ep(port)) == (200, b"until the end")
        assert accepted == 2 and pools.idle_count() == 0
    finally:
        pools.close()
        server.close()


async def test_refused_connect_is_connect_failed():
    pools = Pools(Limits(connect_timeout_s=1.0))
    port = dead_port()
    with pytest.raises(ConnectFailed, match=f"connect to 127.0.0.1:{port} failed"):
        await acquire(pools, ep(port))


async def test_connect_timeout_is_connect_failed():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: once its queue is full, connects hang
    port = listener.getsockname()[1]
    filler = await asyncio.open_connection("127.0.0.1", port)
    pools = Pools(Limits(connect_timeout_s=0.2))
    try:
        with pytest.raises(ConnectFailed, match=f"connect to 127.0.0.1:{port} timed out after 0.2 s"):
            await acquire(pools, ep(port))
    finally:
        filler[1].close()
        listener.close()


async def test_upstream_closing_without_answer_is_a_reset_before_response():
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    pools = Pools()
    try:
        with pytest.raises(UpstreamReset) as info:
            await fetch(pools, ep(server.sockets[0].getsockname()[1]))
        assert info.value.before_response
    finally:
        pools.close()
        server.close()


async def test_idle_connection_closed_by_the_upstream_leaves_the_pool():
    up = await start_upstream(text_handler("hi"), limits=Limits(idle_timeout_s=0.1))
    pools = Pools()
    try:
        assert await fetch(pools, ep(up.port)) == (200, b"hi\n")
        assert pools.idle_count() == 1
        await asyncio.sleep(0.3)  # the upstream closes its idle side
        assert pools.idle_count() == 0
        assert await fetch(pools, ep(up.port)) == (200, b"hi\n")
        assert up.connections == 2
    finally:
        pools.close()
        await up.server.shutdown(0.5)


async def test_tls_identity_is_part_of_the_pool_key(tmp_path):
    ca = make_ca(tmp_path)
    server_files = make_leaf(tmp_path, ca, "server")
    alice = make_leaf(tmp_path, ca, "alice", uri="spiffe://test/cluster/c1/ns/a/sa/alice")
    bob = make_leaf(tmp_path, ca, "bob", uri="spiffe://test/cluster/c1/ns/b/sa/bob")
    seen: list[str] = []

    async def who(req: Request, resp: Response) -> None:
        cert = req.transport.get_extra_info("peercert")
        uri = dict(cert["subjectAltName"])["URI"]
        seen.append(uri)
        resp.send(200, [], uri.encode())

    up = await start_upstream(who, ssl_context=server_context(server_files, require_client=True))
    contexts = {"alice": client_context(alice, ca[2]), "bob": client_context(bob, ca[2])}
    current = ["alice"]
    pools = Pools(tls_for=lambda e: (contexts[current[0]], "localhost"))
    try:
        for name in ("alice", "alice", "bob", "bob", "alice"):
            current[0] = name
            status, body = await fetch(pools, ep(up.port))
            assert status == 200 and body.endswith(f"/sa/{name}".encode())
        assert up.connections == 2  # one per identity, each reused
    finally:
        pools.close()
        await up.server.shutdown(0.5)


async def test_tls_handshake_failure_is_connect_failed(tmp_path):
    ca = make_ca(tmp_path)
    (tmp_path / "other").mkdir()
    other_ca = make_ca(tmp_path / "other")
    server_files = make_leaf(tmp_path, ca, "server")
    up = await start_upstream(text_handler("hi"), ssl_context=server_context(server_files, require_client=False))
    pools = Pools(tls_for=lambda e: (client_context(None, other_ca[2]), "localhost"))
    try:
        with pytest.raises(ConnectFailed, match="TLS handshake with .* failed"):
            await acquire(pools, ep(up.port))
    finally:
        pools.close()
        await up.server.shutdown(0.5)


async def test_pool_closes_connections_idle_past_the_timeout():
    async with upstreams(text_handler("hi")) as (up,):
        pools = Pools(Limits(idle_timeout_s=0.1))
        assert await fetch(pools, ep(up.port)) == (200, b"hi\n")
        assert len(up.server.connections) == 1
        await asyncio.sleep(0.4)
        assert pools.idle_count() == 0
        assert len(up.server.connections) == 0  # the upstream saw the close
        pools.close()


async def test_response_head_timeout_holds_for_each_exchange_on_a_reused_connection():
    """One timer per connection, re-armed: an exchange after a fast one times out at its
    own deadline, and a short timeout after a long one is not held up by the long one."""
    async def fast_or_slow(req: Request, resp: Response) -> None:
        if req.target == b"/slow":
            await asyncio.sleep(1.0)
        resp.send(200, [], b"ok")

    loop = asyncio.get_running_loop()
    async with upstreams(fast_or_slow) as (up,):
        pools = Pools()
        for first_timeout in (0.3, 10.0):
            assert await fetch(pools, ep(up.port), timeout_s=first_timeout) == (200, b"ok")
            await asyncio.sleep(0.1)
            started = loop.time()
            with pytest.raises(UpstreamTimeout, match="no answer in time"):
                await fetch(pools, ep(up.port), target=b"/slow", timeout_s=0.3)
            assert 0.28 <= loop.time() - started < 0.6
        assert await fetch(pools, ep(up.port)) == (200, b"ok")
        assert pools.opened == 3  # a connection that timed out is not reused
        pools.close()
