"""The protocols of one DataPlane beyond HTTP/1.1: HTTP/2 (and gRPC) and WebSocket on the
outbound listener and the gateway, with their own upstream pools.

`DataPlane` (proxy/main.py) makes its listeners with `server()`: each accepts HTTP/1.1 as
before (WebSocket upgrades tunnelled, proxy/websocket.py) and HTTP/2 (prior knowledge h2c,
or ALPN h2 over TLS) on the same port.
"""
from __future__ import annotations

import ssl

from proxy.admin import LiveConfig
from proxy.config import Limits
from proxy.http1.server import Handler
from proxy.http2.handlers import GatewayH2, OutboundH2
from proxy.http2.pool import H2Pools
from proxy.http2.relay import H2Relay
from proxy.http2.server import H2ServerConnection
from proxy.http2.settings import LongLived
from proxy.http2.tlsctx import H2_ALPN, MeshTLS
from proxy.metrics import Metrics
from proxy.protocols import ProtocolServer
from proxy.routing.health import EndpointHealth
from proxy.tap import TapHub
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
        return ProtocolServer(handler, limits=self.limits, ssl_context=ssl_context,
                              h2=lambda connections: H2ServerConnection(accept, settings, connections))

    def close(self) -> None:
        self.h2_pools.close()
