"""Opaque TCP in one process: the outbound proxy's L4 listener of a `tcp` route, connections
balanced over endpoints, the gateway's MESHTUI-TCP side (plain mode), metrics."""
from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest

from proxy.config import BackendGroup, Endpoint, GatewayRule, ServiceRoute
from proxy.tcp import preamble
from proxy.tcp.ports import port_plans
from proxy.config import ProxyConfig
from tests.h2.support import CLUSTER, config, proxy
from tests.l4.support import greeting_backend
from tests.proxy.http_support import free_port

pytestmark = pytest.mark.timeout(30)


@contextlib.asynccontextmanager
async def tcp_echo(name: str):
    """Says its name first, then echoes every byte back."""
    async with greeting_backend(name) as port:
        yield Endpoint("127.0.0.1", port, CLUSTER)


def tcp_route(name: str, port: int, *endpoints: Endpoint, policy: str = "Locality") -> ServiceRoute:
    return ServiceRoute("demo", name, port, "tcp", policy, ((BackendGroup(CLUSTER, 100, endpoints),),),
                        balancer="round-robin")


async def talk(address: str, payload: bytes) -> tuple[bytes, bytes]:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    hello = await asyncio.wait_for(reader.readline(), 5)
    writer.write(payload)
    writer.write_eof()
    echoed = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return hello.strip(), echoed


async def listening(plane, port: int) -> str:
    for _ in range(100):
        if port in plane.protocols.tcp.servers:
            return f"{plane.protocols.tcp.host}:{port}"
        await asyncio.sleep(0.02)
    raise AssertionError(f"no listener on {port}: {plane.protocols.tcp.errors}")


async def test_connections_are_balanced_and_counted():
    async with tcp_echo("a") as a, tcp_echo("b") as b:
        port = free_port()
        async with proxy(config(tcp_route("store", port, a, b))) as plane:
            address = await listening(plane, port)
            payload = b"x" * 300_000
            results = [await talk(address, payload) for _ in range(6)]
            await asyncio.sleep(0.05)
            metrics = plane.metrics.render()
    assert Counter(hello for hello, _ in results) == {b"a": 3, b"b": 3}
    assert all(echoed == payload for _, echoed in results)
    assert 'tcp_open_total{cluster="c1",direction="outbound",src_cluster="c1",dst_cluster="c1",' \
           'dst_namespace="demo",dst_service="store",tls="false"} 6' in metrics
    assert 'tcp_open_connections{cluster="c1",direction="outbound",src_cluster="c1",dst_cluster="c1",' \
           'dst_namespace="demo",dst_service="store",tls="false"} 0' in metrics
    assert 'tcp_read_bytes_total{cluster="c1",direction="outbound",src_cluster="c1",dst_cluster="c1",' \
           'dst_namespace="demo",dst_service="store",tls="false"} 1800000' in metrics


async def test_a_connection_crosses_a_gateway_by_its_preamble():
    async with tcp_echo("far") as far:
        port = free_port()
        export = GatewayRule(path="/c1/store", path_type="Prefix", namespace="demo", service="store", port=port,
                             endpoints=(far,), protocol="tcp")
        async with proxy(config(), gateway=True) as plane:
            host, gw_port = plane.addresses()["gateway"].split(":")
            via = Endpoint(host, int(gw_port), "c9", gateway=True, path_prefix="/c1/store")
            plane.live.apply(config(tcp_route("store", port, via), gateway=(export,)), persist=False)
            address = await listening(plane, port)
            hello, echoed = await talk(address, b"over the gateway")
            refused = await _raw(plane.addresses()["gateway"], preamble.encode("/nothing/here", "c1"))
            await asyncio.sleep(0.05)
            metrics = plane.metrics.render()
    assert (hello, echoed) == (b"far", b"over the gateway")
    assert refused == b""  # no export there: closed without a byte
    assert 'tcp_open_total{cluster="c1",direction="gateway",src_cluster="c1",dst_cluster="c1",' \
           'dst_namespace="demo",dst_service="store",tls="false"} 1' in metrics


async def _raw(address: str, first: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(first)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def test_idle_tunnels_are_closed_after_the_tunnel_idle_timeout():
    from proxy.http2.settings import LongLived
    async with tcp_echo("a") as a:
        port = free_port()
        async with proxy(config(tcp_route("store", port, a)), longlived=LongLived(tunnel_idle_timeout_s=0.3)) as plane:
            address = await listening(plane, port)
            host, p = address.rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(p))
            assert await reader.readline() == b"a\n"
            for _ in range(4):  # traffic keeps it open past the timeout
                await asyncio.sleep(0.15)
                writer.write(b"ping")
                assert await reader.readexactly(4) == b"ping"
            started = asyncio.get_running_loop().time()
            assert await asyncio.wait_for(reader.read(), 3) == b""  # then quiet: closed
            waited = asyncio.get_running_loop().time() - started
            writer.close()
    assert 0.2 < waited < 1.5


def test_tcp_ports_skip_mirrors_and_report_conflicts():
    ep = Endpoint("127.0.0.1", 1, CLUSTER)
    cfg = ProxyConfig(CLUSTER, "k", routes=(tcp_route("a", 7000, ep), tcp_route("b", 7000, ep),
                                            tcp_route("a-c2", 7000, ep, policy="Mirror"), tcp_route("c", 7001, ep)))
    ports, errors = port_plans(cfg)
    assert {p: r.target.name for p, r in ports.items()} == {7000: "a", 7001: "c"}
    assert errors == {7000: "tcp port 7000 of b.demo is already the one of a.demo: only the latter is served"}


def test_preamble_round_trip_and_errors():
    line = preamble.encode("/cluster-1/store", "cluster-2")
    assert preamble.parse(line + b"rest") == ("/cluster-1/store", "cluster-2", len(line))
    assert preamble.parse(line[:10]) is None
    with pytest.raises(preamble.PreambleError, match="does not start with the MESHTUI-TCP preamble"):
        preamble.parse(b"GET / HTTP/1.1\r\n")
    with pytest.raises(preamble.PreambleError, match="malformed preamble"):
        preamble.parse(b"MESHTUI-TCP nopath\r\n")
