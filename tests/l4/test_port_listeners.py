"""The outbound proxy's detecting service-port listeners, in one process with real sockets:
HTTP/1.1 and gRPC routed at L7 (by authority, else to the port's service), anything else
proxied at L4 to the port's service and counted, server-speaks-first after the detection
timeout, and a shared port that refuses what it cannot route."""
from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from proxy.config import BackendGroup, Endpoint, Limits, ListenSettings, ProxyConfig, ServiceRoute
from proxy.events import TapFilter
from proxy.main import DataPlane
from proxy.samples.echo import serve_echo
from tests.h2.support import CLUSTER, grpc_backends, proxy
from tests.l4.support import dual_backend, echo_through, greeting_backend, metric
from tests.proxy.http_support import free_port

pytestmark = pytest.mark.timeout(30)
HOST = "127.0.0.1"


def route(name: str, port: int, backend_port: int, protocol: str = "http") -> ServiceRoute:
    ep = Endpoint(HOST, backend_port, CLUSTER)
    return ServiceRoute("demo", name, port, protocol, "Locality", ((BackendGroup(CLUSTER, 100, (ep,)),),))


def config(*routes: ServiceRoute) -> dict:
    return ProxyConfig(CLUSTER, f"default/default/default/{CLUSTER}", 1, routes=routes, port_listeners=True).to_dict()


async def listening(plane: DataPlane, *ports: int) -> None:
    for _ in range(200):
        if all(p in plane.protocols.tcp.servers for p in ports):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"ports {ports} not listening: {plane.protocols.tcp.errors}")


async def get(port: int, path: str, host: str | None = None) -> tuple[int, str]:
    headers = {"Host": host} if host else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{HOST}:{port}{path}", headers=headers) as r:
            return r.status, (await r.text()).strip()


async def test_one_port_carries_http_at_l7_and_other_bytes_at_l4():
    async with dual_backend("dual") as backend:
        port = free_port()
        async with proxy(config(route("dual", port, backend))) as plane:
            await listening(plane, port)
            sub = plane.tap.subscribe(TapFilter(service="dual", kinds=("response_end",)))
            by_name = await get(port, "/named", f"dual.demo:{port}")
            by_port = await get(port, "/by-port")  # Host 127.0.0.1:port names no service
            event = await asyncio.wait_for(anext(sub), 5)
            sub.close()
            binary = bytes(range(256)) * 1000
            echoed = await echo_through(HOST, port, binary)
            await asyncio.sleep(0.05)
            metrics = plane.metrics.render()
    assert by_name == (200, "dual http /named")
    assert by_port == (200, "dual http /by-port")
    assert (event.direction, event.dst_service, event.path, event.status) == ("outbound", "dual", "/named", 200)
    assert metric(metrics, "request_total", direction="outbound", dst_service="dual") == 2
    assert echoed == binary
    labels = dict(direction="outbound", dst_service="dual", dst_cluster=CLUSTER)
    assert metric(metrics, "tcp_open_total", **labels) == 1
    assert metric(metrics, "tcp_open_connections", **labels) == 0
    assert metric(metrics, "tcp_read_bytes_total", **labels) == len(binary)


async def test_grpc_on_a_service_port_reaches_that_service():
    import grpc
    async with grpc_backends("g1") as (backend,):
        port = free_port()
        async with proxy(config(route("grpc-echo", port, backend.port, "grpc"))) as plane:
            await listening(plane, port)
            async with grpc.aio.insecure_channel(f"{HOST}:{port}") as ch:  # :authority 127.0.0.1:port
                reply = await ch.unary_unary("/meshtui.Echo/Say")(b"hi", timeout=5)
            metrics = plane.metrics.render()
    assert reply.split(b"|")[:2] == [b"g1", b"hi"]
    assert metric(metrics, "request_total", direction="outbound", dst_service="grpc-echo") == 1


async def test_a_silent_client_is_proxied_at_l4_after_the_detection_timeout():
    async with greeting_backend("mysql-ish") as backend:
        port = free_port()
        async with proxy(config(route("db", port, backend)), limits=Limits(detect_timeout_s=0.2)) as plane:
            await listening(plane, port)
            reader, writer = await asyncio.open_connection(HOST, port)
            started = asyncio.get_running_loop().time()
            greeting = await asyncio.wait_for(reader.readline(), 5)
            waited = asyncio.get_running_loop().time() - started
            writer.write(b"QUIT\r\n")
            echoed = await asyncio.wait_for(reader.readexactly(6), 5)
            writer.close()
    assert greeting == b"mysql-ish\n" and echoed == b"QUIT\r\n"
    assert 0.15 < waited < 2.0


async def test_a_shared_port_routes_http_by_host_and_refuses_opaque_bytes(caplog):
    async with dual_backend("a") as a, dual_backend("b") as b:
        port = free_port()
        async with proxy(config(route("a", port, a), route("b", port, b))) as plane:
            await listening(plane, port)
            to_b = await get(port, "/x", f"b.demo:{port}")
            unnamed = await get(port, "/x")
            with caplog.at_level(logging.WARNING, logger="proxy.tcp.listeners"):
                refused = await echo_through(HOST, port, b"\x00binary")
            metrics = plane.metrics.render()
    assert to_b == (200, "b http /x")
    assert unnamed[0] == 503 and f"port {port} of cluster {CLUSTER} is shared by a.demo, b.demo" in unnamed[1]
    assert refused == b""
    assert any(f"port {port} of cluster {CLUSTER} is shared by a.demo, b.demo" in r.getMessage()
               for r in caplog.records)
    assert metric(metrics, "tcp_open_total") == 0


async def test_listeners_follow_the_routes():
    async with dual_backend("one") as backend:
        port = free_port()
        async with proxy(config(route("one", port, backend))) as plane:
            await listening(plane, port)
            plane.live.apply(ProxyConfig(CLUSTER, "k", 2, routes=(route("one", port, backend, "tcp"),),
                                         port_listeners=True).to_dict(), persist=False)
            for _ in range(200):  # now an opaque port: even HTTP is piped as bytes
                if plane.protocols.tcp._modes.get(port) == "opaque":
                    break
                await asyncio.sleep(0.01)
            piped = await echo_through(HOST, port, b"GET /raw HTTP/1.1\r\nHost: x\r\n\r\n")
            plane.live.apply(ProxyConfig(CLUSTER, "k", 3, port_listeners=True).to_dict(), persist=False)
            for _ in range(200):
                if port not in plane.protocols.tcp.servers:
                    break
                await asyncio.sleep(0.01)
            with pytest.raises(OSError):
                await asyncio.open_connection(HOST, port)
    assert piped.startswith(b"HTTP/1.1 200 OK") and piped.endswith(b"one http /raw")


async def test_a_port_in_use_is_reported_and_taken_once_free():
    import socket
    holder = socket.socket()
    holder.bind((HOST, 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        async with dual_backend("late") as backend:
            async with proxy(config(route("late", port, backend))) as plane:
                for _ in range(200):
                    if port in plane.protocols.tcp.errors:
                        break
                    await asyncio.sleep(0.01)
                error = plane.protocols.tcp.errors.get(port, "")
                holder.close()
                for _ in range(300):
                    if port in plane.protocols.tcp.servers:
                        break
                    await asyncio.sleep(0.01)
                reply = await get(port, "/now")
    finally:
        holder.close()
    assert error.startswith(f"cannot listen on {HOST}:{port} for late.demo: ")
    assert reply == (200, "late http /now")


async def test_stopping_lets_http_in_flight_on_a_service_port_finish():
    backend = await serve_echo(HOST, 0, message="slow answer", latency_ms=600)
    port = free_port()
    plane = DataPlane(ListenSettings(CLUSTER, outbound=f"{HOST}:0", limits=Limits()))
    await plane.start()
    try:
        plane.live.apply(config(route("slow", port, backend.sockets[0].getsockname()[1])), persist=False)
        await listening(plane, port)
        in_flight = asyncio.create_task(get(port, "/", f"slow.demo:{port}"))
        await asyncio.sleep(0.2)  # the request is at the backend
        started = asyncio.get_running_loop().time()
        await plane.stop(grace_s=3.0)
        stopped_after = asyncio.get_running_loop().time() - started
        answer = await asyncio.wait_for(in_flight, 5)
    finally:
        await backend.shutdown(grace_s=0.5)
    assert answer == (200, "slow answer")
    assert stopped_after < 2.0, stopped_after  # it waited for the request, not for the whole grace
    with pytest.raises(OSError):  # and no longer accepts
        await asyncio.open_connection(HOST, port)
