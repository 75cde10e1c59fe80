"""A proxy (DataPlane) in the test's event loop with HTTP/2 backends on loopback, and route
configs for them."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from proxy.config import BackendGroup, Endpoint, GatewayRule, Limits, ListenSettings, ProxyConfig, ServiceRoute
from proxy.http2.settings import LongLived
from proxy.main import DataPlane
from proxy.samples.grpc_echo import serve_grpc_echo
from proxy.samples.h2_echo import serve_h2_echo

CLUSTER = "c1"


@dataclass
class Backend:
    port: int
    stop: object

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port, CLUSTER)


def route(name: str, endpoints, *, protocol: str = "grpc", balancer: str = "round-robin", timeout_ms: int = 10_000,
          port: int = 9090) -> ServiceRoute:
    return ServiceRoute("demo", name, port, protocol, "Locality", ((BackendGroup(CLUSTER, 100, tuple(endpoints)),),),
                        balancer=balancer, timeout_ms=timeout_ms)


def config(*routes: ServiceRoute, gateway: tuple[GatewayRule, ...] = ()) -> dict:
    return ProxyConfig(CLUSTER, f"default/default/default/{CLUSTER}", 1, routes=routes, gateway=gateway).to_dict()


@contextlib.asynccontextmanager
async def grpc_backends(*messages: str, **options) -> AsyncIterator[list[Backend]]:
    started = []
    try:
        for m in messages:
            server, port = await serve_grpc_echo("127.0.0.1", 0, message=m, **options)
            started.append(Backend(port, server))
        yield started
    finally:
        await asyncio.gather(*(b.stop.stop(0) for b in started))


@contextlib.asynccontextmanager
async def h2_backends(*messages: str) -> AsyncIterator[list[Backend]]:
    started = []
    try:
        for m in messages:
            server, connections = await serve_h2_echo("127.0.0.1", 0, message=m)
            started.append(Backend(server.sockets[0].getsockname()[1], (server, connections)))
        yield started
    finally:
        for b in started:
            server, connections = b.stop
            server.close()
            for conn in list(connections):
                conn.close()


@contextlib.asynccontextmanager
async def proxy(cfg: dict, *, longlived: LongLived | None = None, gateway: bool = False,
                limits: Limits | None = None) -> AsyncIterator[DataPlane]:
    settings = ListenSettings(cfg["cluster"], outbound="127.0.0.1:0", gateway="127.0.0.1:0" if gateway else "",
                              limits=limits or Limits())
    plane = DataPlane(settings, longlived=longlived)
    await plane.start()
    try:
        plane.live.apply(cfg, persist=False)
        yield plane
    finally:
        await plane.stop(grace_s=0.2)


def channel(plane: DataPlane, authority: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(plane.addresses()["outbound"], options=[("grpc.default_authority", authority)])
