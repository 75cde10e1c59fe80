"""Garbage, truncated requests, oversized headers, slowloris and half-closed connections against the
outbound proxy, the gateway (plain and mTLS), the proxy's admin port and the controller API: each is
refused or closed, while a good client on the same port keeps getting 200s."""
from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import pytest

from controller.api import ApiServer, build_app
from controller.auth import load_or_create_tokens
from controller.embedded import EmbeddedController
from proxy.config import Limits
from tests.badinput.attacks import (
    GoodClient, garbage, oversized_headers, read_until_closed, refused_with_4xx_or_closed, slowloris, truncated,
)
from tests.proxy.http_support import (
    client_context, config, data_plane, endpoint, gateway_rule, make_ca, make_leaf, route, server_context,
    text_handler, upstreams,
)

HEADER_TIMEOUT_S = 0.5
LIMITS = Limits(header_timeout_s=HEADER_TIMEOUT_S)


@dataclass
class Target:
    """One listening port, and how a good client calls it."""

    name: str
    host: str
    port: int
    url: str
    headers: dict
    ssl_context: ssl.SSLContext | None = None
    ca: Path | None = None


@pytest.fixture
async def targets(tmp_path: Path) -> AsyncIterator[dict[str, Target]]:
    ca = make_ca(tmp_path)
    gw_files = make_leaf(tmp_path, ca, "gateway", uri="spiffe://fed/cluster/c1/ns/mesh/sa/gateway")
    caller = make_leaf(tmp_path, ca, "c2", uri="spiffe://fed/cluster/c2/ns/mesh/sa/proxy")
    gw_rules = [gateway_rule("/c1/httpbin-mesh", "httpbin", "httpbin", 8080, [])]
    async with upstreams(text_handler("ok")) as (up,):
        gw_rules[0]["endpoints"] = [endpoint(up.port, "c1")]
        routes = [route("httpbin", "httpbin", 8080, [[("c1", [endpoint(up.port, "c1")])]])]
        async with data_plane("c1", config("c1", routes, gw_rules), gateway=True, admin=True, limits=LIMITS) as plain, \
                data_plane("c1", config("c1", [], gw_rules), outbound=False, gateway=True, limits=LIMITS,
                           gateway_ssl=server_context(gw_files, require_client=True)) as tls:
            controller = await EmbeddedController.open(tmp_path / "state")
            tokens = load_or_create_tokens(tmp_path / "state")
            server = ApiServer(build_app(controller, tokens), drain_seconds=1, header_timeout_seconds=HEADER_TIMEOUT_S)
            api_url = await server.start("127.0.0.1", 0)
            try:
                def at(name: str, address: str, path: str, headers: dict, scheme: str = "http", **kw) -> Target:
                    host, port = address.rsplit(":", 1)
                    return Target(name, host, int(port), f"{scheme}://{address}{path}", headers, **kw)

                a, b = plain.addresses(), tls.addresses()
                api_host_port = api_url.split("://", 1)[1].rstrip("/")
                yield {
                    "outbound": at("outbound", a["outbound"], "/", {"Host": "httpbin.httpbin:8080"}),
                    "gateway": at("gateway", a["gateway"], "/c1/httpbin-mesh/", {}),
                    "gateway-tls": at("gateway-tls", b["gateway"], "/c1/httpbin-mesh/", {}, "https",
                                      ssl_context=client_context(caller, ca[2]), ca=ca[2]),
                    "admin": at("admin", a["admin"], "/live", {}),
                    "api": at("api", api_host_port, "/healthz", {"Authorization": f"Bearer {tokens.by_role['viewer']}"}),
                }
            finally:
                await server.stop()
                await controller.close()


def request_head(t: Target) -> bytes:
    """The good client's request as raw bytes, without the blank line that ends the head."""
    path = t.url.split(str(t.port), 1)[1]
    head = f"GET {path} HTTP/1.1\r\nHost: {t.headers.get('Host', 'x')}\r\n".encode()
    if "Authorization" in t.headers:
        head += f"Authorization: {t.headers['Authorization']}\r\n".encode()
    return head


PLAIN = ["outbound", "gateway", "admin", "api"]


@pytest.mark.parametrize("name", PLAIN)
async def test_garbage_truncation_and_huge_headers_are_refused_while_a_good_client_is_served(targets, name):
    t = targets[name]
    async with GoodClient(t.url, t.headers) as good:
        for _ in range(3):
            answer = await garbage(t.host, t.port)
            assert refused_with_4xx_or_closed(answer), answer[:200]
        request = request_head(t)
        for head in (request[:20], request + b"Content-Length: 1000\r\n\r\nabc",
                     request + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab"):
            answer = await truncated(t.host, t.port, head.replace(b"GET ", b"POST ", 1))
            assert refused_with_4xx_or_closed(answer) or answer.startswith((b"HTTP/1.1 502", b"HTTP/1.1 503")), \
                (head, answer[:200])
        answer = await oversized_headers(t.host, t.port)
        assert refused_with_4xx_or_closed(answer), answer[:200]
        await asyncio.sleep(0.2)
    good.assert_served()


@pytest.mark.parametrize("name", PLAIN)
async def test_slowloris_is_cut_off_at_the_header_timeout(targets, name):
    t = targets[name]
    async with GoodClient(t.url, t.headers) as good:
        results = await asyncio.gather(*(slowloris(t.host, t.port, every_s=0.2, for_s=3.0) for _ in range(20)))
    good.assert_served()
    for answer, seconds in results:
        assert refused_with_4xx_or_closed(answer), answer[:200]
        assert seconds < HEADER_TIMEOUT_S + 1.5, seconds
        if answer:
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


@pytest.mark.parametrize("name", PLAIN)
async def test_a_half_closed_connection_gets_its_answer_then_is_closed(targets, name):
    t = targets[name]
    head = request_head(t)
    reader, writer = await asyncio.open_connection(t.host, t.port)
    writer.write(head + b"\r\n")
    writer.write_eof()
    try:
        answer = await read_until_closed(reader)
    finally:
        writer.close()
    # the server may answer before it closes, or close at once (aiohttp and our proxies close): never hang
    assert answer == b"" or answer.startswith(b"HTTP/1.1 200"), answer[:200]
    # and a connection half-closed before any byte is simply closed
    reader, writer = await asyncio.open_connection(t.host, t.port)
    writer.write_eof()
    try:
        assert await read_until_closed(reader) == b""
    finally:
        writer.close()


async def test_tls_gateway_refuses_garbage_instead_of_a_client_hello(targets):
    t = targets["gateway-tls"]
    async with GoodClient(t.url, t.headers, t.ssl_context) as good:
        for payload in (b"\x00" + os.urandom(600), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
            reader, writer = await asyncio.open_connection(t.host, t.port)
            writer.write(payload)
            try:
                answer = await read_until_closed(reader)
            finally:
                writer.close()
            assert b"HTTP/" not in answer and b"ok" not in answer, answer[:200]
        # a client without a certificate never gets a response
        with pytest.raises((ssl.SSLError, ConnectionError)):
            reader, writer = await asyncio.open_connection(t.host, t.port, ssl=client_context(None, t.ca))
            writer.write(b"GET /c1/httpbin-mesh/ HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if not data:
                raise ConnectionError("closed without an answer")
        await asyncio.sleep(0.2)
    good.assert_served()


@pytest.mark.parametrize("payload", [b"", b"\x16\x03\x01\x02\x00" + b"\x01" * 40], ids=["silent", "partial-hello"])
async def test_tls_gateway_cuts_off_an_unfinished_handshake_at_the_header_timeout(targets, payload):
    t = targets["gateway-tls"]
    async with GoodClient(t.url, t.headers, t.ssl_context) as good:
        reader, writer = await asyncio.open_connection(t.host, t.port)
        writer.write(payload)
        try:
            answer = await read_until_closed(reader, HEADER_TIMEOUT_S + 1.5)
        finally:
            writer.close()
        assert answer == b""
    good.assert_served()
