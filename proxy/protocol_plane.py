"""The protocols of one DataPlane beyond HTTP/1.1: HTTP/2 (and gRPC), WebSocket and opaque
TCP, with their own upstream pools.

`DataPlane` (proxy/main.py) makes its listeners with `server()`: each accepts HTTP/1.1 as
before (WebSocket upgrades tunnelled, proxy/websocket.py) and HTTP/2 (prior knowledge h2c,
or ALPN h2 over TLS) on the same port; the gateway also takes opaque TCP for its `tcp`
exports (proxy/tcp/gateway.py). `start_tcp()` opens the outbound proxy's service-port
listeners (proxy/tcp/listeners.py): L4 for `tcp` ports and, with `ProxyConfig.port_listeners`,
protocol detection on every other service port, whose HTTP goes through the same handlers
as the outbound listener's (so tap, metrics and policies are alike).
"""
from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from proxy.admin import LiveConfig
from proxy.config import Limits
from proxy.http1.server import Handler
from proxy.http2.handlers import GatewayH2, OutboundH2
from proxy.http2.pool import H2Pools
from proxy.http2.relay import H2Relay
from proxy.http2.server import H2ServerConnection
from proxy.http2.settings import LongLived
from proxy.http2.tlsctx import H2_ALPN, TCP_ALPN, MeshTLS
from proxy.metrics import Metrics
from proxy.protocols import ProtocolServer
from proxy.routing.health import EndpointHealth
from proxy.tap import TapHub
from proxy.tcp.forward import TcpForwarder
from proxy.tcp.gateway import GatewayTcp
from proxy.tcp.listeners import TcpListeners
from proxy.tcp.portroute import PortH2, PortHttp1
from proxy.tcp.ports import PortPlan
from proxy.tls import ProxyIdentities
from proxy.websocket import Upgrades, gateway_decider, outbound_decider


class ProtocolPlane:
    def __init__(self, *, cluster: str, live: LiveConfig, health: EndpointHealth, metrics: Metrics, tap: TapHub,
                 identities: ProxyIdentities | None, limits: Limits, longlived: LongLived | None = None) -> None:
        self.cluster = cluster
        self.live = live
        self.health = health
        self.metrics = metrics
        self.tap = tap
        self.identities = identities
        self.limits = limits
        self.longlived = longlived or LongLived()
        self.h2_pools = H2Pools(self.longlived, limits.connect_timeout_s)
        self.h2_tls = MeshTLS(identities, H2_ALPN)
        self.http1_tls = MeshTLS(identities, "http/1.1")
        self.tcp: TcpListeners | None = None
        self._gateway_tcp: TcpForwarder | None = None
        self._outbound: tuple[Handler, OutboundH2 | GatewayH2] | None = None  # the outbound listener's HTTP/1.1 and h2 handling

    def _h2_relay(self, direction: str, inbound_tls: bool) -> H2Relay:
        return H2Relay(cluster=self.cluster, direction=direction, health=self.health, metrics=self.metrics,
                       tap=self.tap, pools=self.h2_pools, tls=self.h2_tls, inbound_tls=inbound_tls)

    def server(self, role: str, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> ProtocolServer:
        """The listener of `role` ("outbound" or "gateway") for `handler` (its HTTP/1.1 side)."""
        settings = self.longlived
        tls = ssl_context is not None
        if role == "outbound":
            accept = OutboundH2(cluster=self.cluster, routes=self.live, relay=self._h2_relay("outbound", False),
                                identities=self.identities)
            decide = outbound_decider(self.cluster, self.live, self.identities)
        else:
            accept = GatewayH2(cluster=self.cluster, routes=self.live, relay=self._h2_relay("gateway", tls), tls=tls,
                               timeout_s=self.limits.request_timeout_s)
            decide = gateway_decider(self.cluster, self.live, tls, self.limits.request_timeout_s)
        handler = Upgrades(handler, decide, cluster=self.cluster, direction=role, health=self.health,
                           metrics=self.metrics, tap=self.tap, tls=self.http1_tls, settings=settings,
                           connect_timeout_s=self.limits.connect_timeout_s, inbound_tls=tls)
        if role == "outbound":
            self._outbound = (handler, accept)
        return ProtocolServer(handler, limits=self.limits, ssl_context=ssl_context,
                              h2=lambda connections: H2ServerConnection(accept, settings, connections),
                              tcp=self._gateway_tcp_factory(tls) if role == "gateway" else None)

    def _gateway_tcp_factory(self, tls: bool) -> Callable[[set], GatewayTcp]:
        forwarder = self._gateway_tcp = self._tcp_forwarder("gateway", tls, framed_clients=True)
        timeout = self.limits.header_timeout_s

        def tcp(connections: set) -> GatewayTcp:
            return GatewayTcp(cluster=self.cluster, routes=self.live, forwarder=forwarder, tls=tls,
                              connections=connections, preamble_timeout_s=timeout)
        return tcp

    def _tcp_forwarder(self, direction: str, inbound_tls: bool, framed_clients: bool = False) -> TcpForwarder:
        return TcpForwarder(cluster=self.cluster, direction=direction, health=self.health, metrics=self.metrics,
                            tls=MeshTLS(self.identities, TCP_ALPN), connect_timeout_s=self.limits.connect_timeout_s,
                            idle_timeout_s=self.longlived.tunnel_idle_timeout_s, inbound_tls=inbound_tls,
                            framed_clients=framed_clients)

    def start_tcp(self, addresses: dict[str, str]) -> None:
        """Open the service-port listeners beside the outbound listener (`addresses`: where the
        DataPlane listens, by name; `server("outbound", ...)` made first) and keep them in step
        with the routes."""
        host = addresses["outbound"].rpartition(":")[0]
        reserved = frozenset(int(a.rpartition(":")[2]) for a in addresses.values() if a.rpartition(":")[0] == host)
        self.tcp = TcpListeners(cluster=self.cluster, host=host, routes=self.live,
                                forwarder=self._tcp_forwarder("outbound", False), port_server=self._port_server,
                                reserved=reserved)
        self.tcp.start()

    def _port_server(self, plan: Callable[[], PortPlan | None], opaque: Callable[[], asyncio.Protocol]
                     ) -> ProtocolServer:
        """A detecting service port's listener: the outbound listener's HTTP handling (by Host,
        else the port's service), and `opaque` for the rest."""
        assert self._outbound is not None, "the outbound listener is made before its service ports"
        http1, h2 = self._outbound
        port_h2 = PortH2(h2, self.cluster, self.live, plan)
        settings = self.longlived
        return ProtocolServer(PortHttp1(http1, self.cluster, self.live, plan), limits=self.limits,
                              h2=lambda connections: H2ServerConnection(port_h2, settings, connections), opaque=opaque)

    async def drain(self, grace_s: float) -> None:
        """Stop the service-port listeners, letting HTTP requests in flight finish (at most `grace_s`)."""
        if self.tcp is not None:
            await self.tcp.shutdown(grace_s)

    def close(self) -> None:
        self.h2_pools.close()
        if self.tcp is not None:
            self.tcp.close()
        if self._gateway_tcp is not None:
            self._gateway_tcp.close()
