"""The outbound proxy's opaque TCP side: one listener per route whose port is declared `tcp`,
on the outbound listener's host and the route's port (a client of `svc.ns:7000` connects
to <outbound host>:7000, as to a ClusterIP with that port). Mirrored names get none (they
would share their service's port); two tcp services of one cluster on one port: the first
by name gets it and the other is reported in `errors`.

Listeners follow the route table: opened and closed as configurations change. Each
accepted connection is balanced by the route's policy and balancer (proxy/tcp/forward.py).
"""
from __future__ import annotations

import asyncio
import logging

from proxy.config import ProxyConfig, ServiceRoute
from proxy.outbound import RouteSource
from proxy.tcp.connect import Held
from proxy.tcp.forward import TcpDestination, TcpForwarder

log = logging.getLogger(__name__)
WATCH_S = 0.05  # how often the route table is looked at for a change


def tcp_ports(config: ProxyConfig) -> tuple[dict[int, ServiceRoute], dict[int, str]]:
    """(port -> route served there, port -> why a route could not have it) (pure)."""
    ports: dict[int, ServiceRoute] = {}
    errors: dict[int, str] = {}
    for route in sorted(config.routes, key=lambda r: (r.namespace, r.name, r.port)):
        if route.protocol != "tcp" or route.policy == "Mirror":
            continue
        taken = ports.get(route.port)
        if taken is not None:
            errors[route.port] = (f"tcp port {route.port} of {route.name}.{route.namespace} is already the one of "
                                  f"{taken.name}.{taken.namespace}: only the latter is served")
            continue
        ports[route.port] = route
    return ports, errors


class _Accepted(Held):
    def __init__(self, listeners: TcpListeners, port: int) -> None:
        super().__init__()
        self.listeners = listeners
        self.port = port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.listeners.accepted(self)


class TcpListeners:
    def __init__(self, *, cluster: str, host: str, routes: RouteSource, forwarder: TcpForwarder,
                 reserved: frozenset[int] = frozenset()) -> None:
        """`reserved`: ports of this host the proxy's other listeners hold."""
        self.cluster = cluster
        self.host = host
        self.routes = routes
        self.forwarder = forwarder
        self.reserved = reserved
        self.servers: dict[int, asyncio.Server] = {}
        self.serving: dict[int, ServiceRoute] = {}
        self.errors: dict[int, str] = {}
        self._seen: object = None
        self._timer: asyncio.TimerHandle | None = None
        self._sync: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[bool]] = set()

    def start(self) -> None:
        self._watch()

    def _watch(self) -> None:
        table = self.routes.table
        if table is not self._seen and (self._sync is None or self._sync.done()):
            self._seen = table
            self._sync = asyncio.get_running_loop().create_task(self.sync(table.config))
        self._timer = asyncio.get_running_loop().call_later(WATCH_S, self._watch)

    async def sync(self, config: ProxyConfig) -> None:
        """Open and close listeners to match `config`."""
        wanted, errors = tcp_ports(config)
        for port in list(self.servers):
            if port not in wanted:
                self.servers.pop(port).close()
                self.serving.pop(port, None)
        for port, route in wanted.items():
            self.serving[port] = route
            if port in self.servers:
                continue
            if port in self.reserved:
                errors[port] = f"tcp port {port} of {route.name}.{route.namespace} is one of the proxy's own ports"
                continue
            try:
                self.servers[port] = await asyncio.get_running_loop().create_server(
                    lambda port=port: _Accepted(self, port), self.host, port, reuse_address=True)
            except OSError as exc:
                errors[port] = (f"cannot listen on {self.host}:{port} for {route.name}.{route.namespace}: "
                                f"{exc.strerror or exc}")
        for port, why in errors.items():
            if self.errors.get(port) != why:
                log.error("%s", why)
        self.errors = errors

    def accepted(self, conn: _Accepted) -> None:
        route = self.serving.get(conn.port)
        if route is None:
            conn.transport.close()
            return
        table = self.routes.table
        peer = conn.transport.get_extra_info("peername")
        key = peer[0].encode() if route.balancer == "hashing" and peer else b""
        dest = TcpDestination(route.namespace, route.name,
                              lambda tried: table.choose(route, hash_key=key, exclude=tried), self.cluster)
        task = asyncio.get_running_loop().create_task(self.forwarder.forward(conn, dest))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def addresses(self) -> dict[str, str]:
        return {f"tcp {r.name}.{r.namespace}:{port}": f"{self.host}:{port}"
                for port, r in sorted(self.serving.items()) if port in self.servers}

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for server in self.servers.values():
            server.close()
        self.servers.clear()
        for task in self._tasks:
            task.cancel()
        self.forwarder.close()
