"""The gateway's opaque TCP side: a connection that negotiated ALPN `meshtui-tcp` (or, in
plain mode, starts with the MESHTUI-TCP preamble) names its export in the preamble line
(proxy/tcp/preamble.py); the caller is checked against the export's audience as for HTTP,
and the connection is joined to a local endpoint of the export. Exports of every protocol
take these streams: a `tcp` port's connections, and those an outbound proxy found not to
speak HTTP on an http, http2 or grpc port (proxy/tcp/listeners.py). A refused connection is
closed (and logged with the reason): opaque TCP has no way to say why.
"""
from __future__ import annotations

import asyncio
import logging
import math

from proxy.gateway import refusal
from proxy.outbound import RouteSource
from proxy.tcp import preamble
from proxy.tcp.connect import Held
from proxy.tcp.forward import TcpDestination, TcpForwarder
from proxy.tls import identity_from_peercert

log = logging.getLogger(__name__)


class GatewayTcp(Held):
    """One incoming connection, from its preamble to its pipe."""

    def __init__(self, *, cluster: str, routes: RouteSource, forwarder: TcpForwarder, tls: bool,
                 connections: set, preamble_timeout_s: float) -> None:
        super().__init__()
        self.cluster = cluster
        self.routes = routes
        self.forwarder = forwarder
        self.tls = tls
        self.connections = connections
        self.preamble_timeout_s = preamble_timeout_s
        self.deadline = math.inf  # the listener's sweep: until the preamble is in
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.connections.add(self)
        self.deadline = asyncio.get_running_loop().time() + self.preamble_timeout_s
        self._task = asyncio.get_running_loop().create_task(self._route())

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._task is not None and not self._task.done():
            self.connections.discard(self)

    async def _route(self) -> None:
        try:
            end = await self.read_until(b"\r\n", preamble.MAX_LINE)
            path, claimed_cluster, used = preamble.parse(bytes(self.buffer[:end]))
        except (ConnectionError, preamble.PreambleError) as exc:
            return self._refuse(f"bad TCP preamble: {exc}")
        del self.buffer[:used]
        self.deadline = math.inf
        table = self.routes.table
        found = table.gateway_rule(path)
        if found is None:
            return self._refuse(f"no export at path {path} in cluster {self.cluster}")
        rule = found[0]
        if self.tls:
            ident = identity_from_peercert(self.transport.get_extra_info("ssl_object"))
            if ident is None:
                return self._refuse("client certificate carries no SPIFFE identity")
            src_cluster, account = ident.cluster, ident.service_account
        else:  # plain mode: the caller says who it is
            src_cluster, account = claimed_cluster, None
        reason = refusal(rule, src_cluster, account)
        if reason is not None:
            return self._refuse(reason)
        key = src_cluster.encode() if rule.balancer == "hashing" else b""
        dest = TcpDestination(rule.namespace, rule.service,
                              lambda tried: table.choose_local(rule, hash_key=key, exclude=tried), src_cluster)
        if not await self.forwarder.forward(self, dest, on_close=lambda: self.connections.discard(self)):
            self.connections.discard(self)

    def _refuse(self, reason: str) -> None:
        log.warning("gateway %s refused a TCP connection: %s", self.cluster, reason)
        self.connections.discard(self)
        self.transport.close()

    # the listener's interface (proxy/http1/server.py HttpServer)
    def expire(self) -> None:
        self._refuse(f"no TCP preamble within {self.preamble_timeout_s:g} s")

    def drain_and_close(self) -> None:
        if self.deadline != math.inf:  # still waiting for its preamble
            self.transport.close()
