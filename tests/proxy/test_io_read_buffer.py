"""The server and the upstream client read TLS connections into one shared buffer
(proxy/readinto.py ReadInto), and plain ones as the transport hands them over; on
both, under the stdlib loop and uvloop (the proxy's loop): bodies of concurrent
connections never mix, and a connection handed to another protocol still delivers
its bytes to that protocol."""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from proxy.config import Endpoint
from proxy.readinto import _READ
from proxy.http1.pool import Pools
from proxy.http1.server import HttpServer, Request, Response
from tests.proxy.http_support import client_context, make_ca, make_leaf, server_context
from tests.proxy.test_http_pool import Collect

LOOPS = {"stdlib": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run(loop: str, coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(asyncio.wait_for(coro(), 20))


async def echo_digest(req: Request, resp: Response) -> None:
    """Answers the request body back, with its SHA-256 in a header."""
    body = await req.body.read_all(1 << 24)
    resp.send(200, [(b"x-sha256", hashlib.sha256(body).hexdigest().encode())], body)


@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_concurrent_large_bodies_arrive_whole_and_unmixed(loop: str, tls: bool, tmp_path: Path) -> None:
    async def main() -> None:
        server_ctx = client_ctx = None
        if tls:
            ca = make_ca(tmp_path)
            server_ctx = server_context(make_leaf(tmp_path, ca, "server"), require_client=False)
            client_ctx = client_context(None, ca[2])
        server = await HttpServer(echo_digest, ssl_context=server_ctx).listen("127.0.0.1", 0)
        pools = Pools(tls_for=lambda ep: (client_ctx, "localhost"))
        ep = Endpoint("127.0.0.1", server.address[1], "c1")

        async def exchange(n: int) -> None:
            body = bytes([n]) * (300_000 + n)  # several reads each, interleaved with the other connections'
            key = pools.key(ep)
            conn = await pools.connect(ep, key)
            got = Collect()
            head = b"POST /%d HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % (n, len(body))
            conn.begin(head + body, got, head_request=False, body=False, timeout_s=10)
            status, answer = await got.done
            conn.finish()
            pools.release(conn)
            assert status == 200
            assert answer == body, f"connection {n}: {len(answer)} bytes back, not its own {len(body)}"

        try:
            await asyncio.gather(*(exchange(n) for n in range(1, 7)))
        finally:
            pools.close()
            await server.shutdown(1.0)

    run(loop, main)


class Tunnel(asyncio.Protocol):
    """What a connection becomes after an upgrade: answers b"ping" with b"pong"."""

    def __init__(self, transport: asyncio.Transport, http1: asyncio.BaseProtocol) -> None:
        self.transport = transport
        self.http1 = http1
        self.received = b""

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.received.endswith(b"ping"):
            self.transport.write(b"pong")

    def connection_lost(self, exc: Exception | None) -> None:
        self.http1.connection_lost(exc)  # type: ignore[attr-defined]  # as proxy/websocket.py does


def take_over(req: Request, resp: Response) -> None:
    transport = req.transport
    transport.set_protocol(Tunnel(transport, transport.get_protocol()))
    transport.write(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: test\r\n\r\n")


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_bytes_after_a_protocol_switch_reach_the_new_protocol(loop: str) -> None:
    # a WebSocket tunnel takes the connection over so (proxy/websocket.py): the transport
    # must stop reading into the server's buffer and call the new protocol instead
    async def main() -> None:
        server = await HttpServer(take_over).listen("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        try:
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: test\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 101 ")
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"pong"
        finally:
            writer.close()
            await server.shutdown(1.0)

    run(loop, main)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_over_tls_the_server_and_the_client_read_into_the_shared_buffer(loop: str, tmp_path: Path) -> None:
    # uvloop allocates (and frees) a 256 KiB bytes object per TLS read for any other
    # protocol; it reads into the buffer only for one that is no asyncio.Protocol
    seen_by_server: list[bytes] = []

    async def snapshot(req: Request, resp: Response) -> None:
        seen_by_server.append(bytes(_READ.view[:200]))  # what the server's last read put there
        await echo_digest(req, resp)

    async def main() -> None:
        ca = make_ca(tmp_path)
        server_ctx = server_context(make_leaf(tmp_path, ca, "server"), require_client=False)
        server = await HttpServer(snapshot, ssl_context=server_ctx).listen("127.0.0.1", 0)
        client_ctx = client_context(None, ca[2])
        pools = Pools(tls_for=lambda ep: (client_ctx, "localhost"))
        ep = Endpoint("127.0.0.1", server.address[1], "c1")
        try:
            conn = await pools.connect(ep, pools.key(ep))
            got = Collect()
            _READ.view[:] = bytes(len(_READ.view))
            conn.begin(b"POST /server-read HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\n\r\nclient-sent", got,
                       head_request=False, body=False, timeout_s=10)
            assert (await got.done)[0] == 200
            seen_by_client = bytes(_READ.view[:200])
            conn.close()
        finally:
            pools.close()
            await server.shutdown(1.0)
        assert b"POST /server-read" in seen_by_server[0]
        assert seen_by_client.startswith(b"HTTP/1.1 200 ") and b"client-sent" in seen_by_client

    run(loop, main)
