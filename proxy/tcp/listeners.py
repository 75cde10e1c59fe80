"""The outbound proxy's service-port listeners: one per port of proxy/tcp/ports.py's plan, on
the outbound listener's host (a client of `svc.ns:7000` connects to <outbound host>:7000, as
to a ClusterIP with that port).

- An opaque port (declared `tcp`) proxies every connection at L4 to its service.
- A detecting port (`ProxyConfig.port_listeners`) is a ProtocolServer (proxy/protocols.py)
  that peeks at each connection: HTTP/1 or the h2 preface go to the outbound proxy's HTTP
  handling (proxy/tcp/portroute.py: by Host, else to the port's service), anything else, or
  nothing within `Limits.detect_timeout_s` (a server-speaks-first protocol), goes at L4 to
  the port's service; on a port several services share it is refused and logged.

L4 connections are balanced once, when accepted, by the route's policy and balancer, and
cross clusters over mTLS to the exporting gateway (proxy/tcp/forward.py), which counts
them (`tcp_open_connections`, bytes). Listeners follow the route table: opened, changed and
closed as configurations change; a port that cannot be had is reported in `errors` (and
logged once), and tried again every RETRY_S while it is in use.
"""
from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable

from proxy.config import ProxyConfig
from proxy.outbound import RouteSource
from proxy.protocols import ProtocolServer
from proxy.tcp.connect import Held
from proxy.tcp.forward import TcpDestination, TcpForwarder
from proxy.tcp.ports import OPAQUE, PortPlan, port_plans

log = logging.getLogger(__name__)
WATCH_S = 0.05  # how often the route table is looked at for a change
RETRY_S = 1.0  # a port in use (by a process on its way out?) is tried again
DRAIN_S = 5.0  # a detecting listener that is closed lets its HTTP requests finish this long

# makes a detecting port's server, from its plan (looked up per request) and its L4 protocol
PortServer = Callable[[Callable[[], PortPlan | None], Callable[[], asyncio.Protocol]], ProtocolServer]


class _Accepted(Held):
    """A connection for L4, from the moment it is known to be one."""

    def __init__(self, listeners: TcpListeners, port: int) -> None:
        super().__init__()
        self.listeners = listeners
        self.port = port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.listeners.accepted(self)


class TcpListeners:
    def __init__(self, *, cluster: str, host: str, routes: RouteSource, forwarder: TcpForwarder,
                 port_server: PortServer, reserved: frozenset[int] = frozenset()) -> None:
        """`reserved`: ports of this host the proxy's other listeners hold."""
        self.cluster = cluster
        self.host = host
        self.routes = routes
        self.forwarder = forwarder
        self.port_server = port_server
        self.reserved = reserved
        self.servers: dict[int, asyncio.Server | ProtocolServer] = {}
        self.plans: dict[int, PortPlan] = {}
        self.errors: dict[int, str] = {}
        self._modes: dict[int, str] = {}
        self._refusals_logged: set[int] = set()
        self._seen: object = None
        self._unbound: set[int] = set()  # wanted ports whose listen failed
        self._retry_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._sync: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._draining: set[ProtocolServer] = set()

    def start(self) -> None:
        self._watch()

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        table = self.routes.table
        retry = bool(self._unbound) and loop.time() >= self._retry_at
        if (table is not self._seen or retry) and (self._sync is None or self._sync.done()):
            self._seen = table
            self._sync = loop.create_task(self.sync(table.config))
        self._timer = loop.call_later(WATCH_S, self._watch)

    async def sync(self, config: ProxyConfig) -> None:
        """Open, change and close listeners to match `config`."""
        wanted, errors = port_plans(config, self.reserved)
        for port in list(self.servers):
            if port not in wanted or wanted[port].mode != self._modes[port]:
                self._retire(port)
        self.plans = wanted
        self._refusals_logged.clear()
        self._unbound.clear()
        loop = asyncio.get_running_loop()
        for port, plan in wanted.items():
            if port in self.servers:
                continue
            try:
                if plan.mode == OPAQUE:
                    server: asyncio.Server | ProtocolServer = await loop.create_server(
                        lambda port=port: _Accepted(self, port), self.host, port, reuse_address=True)
                else:
                    server = await self.port_server(lambda port=port: self.plans.get(port),
                                                    lambda port=port: _Accepted(self, port)).listen(self.host, port)
            except OSError as exc:
                why = f"cannot listen on {self.host}:{port} for {', '.join(plan.services)}: {exc.strerror or exc}"
                errors[port] = f"{errors[port]}; {why}" if port in errors else why
                if exc.errno == errno.EADDRINUSE:
                    self._unbound.add(port)
                    self._retry_at = loop.time() + RETRY_S
                continue
            self.servers[port] = server
            self._modes[port] = plan.mode
        for port, why in errors.items():
            if self.errors.get(port) != why:
                log.error("%s", why)
        self.errors = errors

    def _retire(self, port: int) -> None:
        server = self.servers.pop(port)
        del self._modes[port]
        server.close()
        if isinstance(server, ProtocolServer):
            self._draining.add(server)
            self._spawn(self._drain(server))

    async def _drain(self, server: ProtocolServer) -> None:
        await server.wait_closed(DRAIN_S)
        self._draining.discard(server)

    def accepted(self, conn: _Accepted) -> None:
        plan = self.plans.get(conn.port)
        route = plan.target if plan is not None else None
        if route is None:
            if plan is not None and conn.port not in self._refusals_logged:
                self._refusals_logged.add(conn.port)  # once per configuration
                log.warning("refused a connection that is not HTTP: %s", plan.ambiguity(self.cluster))
            conn.transport.close()
            return
        table = self.routes.table
        peer = conn.transport.get_extra_info("peername")
        key = peer[0].encode() if route.balancer == "hashing" and peer else b""
        dest = TcpDestination(route.namespace, route.name,
                              lambda tried: table.choose(route, hash_key=key, exclude=tried), self.cluster)
        self._spawn(self.forwarder.forward(conn, dest))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self, grace_s: float) -> None:
        """Stop accepting on every port, let HTTP requests in flight finish (at most
        `grace_s`), then close what is left, opaque connections included."""
        for server in self.servers.values():
            server.close()
        await asyncio.gather(*(server.wait_closed(grace_s) for server in [*self.servers.values(), *self._draining]
                               if isinstance(server, ProtocolServer)))
        self.close()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._sync is not None:
            self._sync.cancel()
        for server in [*self.servers.values(), *self._draining]:
            if isinstance(server, ProtocolServer):
                server.abort()
            else:
                server.close()
        self.servers.clear()
        self._draining.clear()
        for task in self._tasks:
            task.cancel()
        self.forwarder.close()
