"""One accepted TCP connection to the endpoint its route (or export) chooses, joined into a
pipe: shared by the outbound L4 listeners and the gateway.

The connection is balanced once, when it is accepted (opaque bytes have no requests). A
failed connect is tried once more on another endpoint. Accounting: endpoint health (the
connect time is the latency sample), `Metrics.tcp()` (open connections, bytes both ways,
counted when the connection closes). A connection to another cluster's gateway starts with
the MESHTUI-TCP preamble and is framed after it (proxy/tcp/pipe.py).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

from proxy.config import Endpoint
from proxy.http1.client import ConnectFailed
from proxy.metrics import Metrics
from proxy.routing.health import EndpointHealth
from proxy.tcp import preamble
from proxy.tcp.connect import Held, connect
from proxy.tcp.pipe import Pipe
from proxy.http2.tlsctx import TCP_ALPN, MeshTLS
from proxy.tls import ReloadingTLS

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TcpDestination:
    namespace: str
    service: str
    choose: Callable[[frozenset[str]], Endpoint | str]
    src_cluster: str
    caller: ReloadingTLS | None = None


class TcpForwarder:
    def __init__(self, *, cluster: str, direction: str, health: EndpointHealth, metrics: Metrics, tls: MeshTLS,
                 connect_timeout_s: float, idle_timeout_s: float, inbound_tls: bool = False,
                 framed_clients: bool = False) -> None:
        """`framed_clients`: the connections it forwards are framed mesh hops (the gateway's,
        proxy/tcp/pipe.py); connections to gateways always are."""
        self.cluster = cluster
        self.direction = direction
        self.health = health
        self.metrics = metrics
        self.tls = tls
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.inbound_tls = inbound_tls
        self.framed_clients = framed_clients
        self.pipes: set[Pipe] = set()

    async def forward(self, client: Held, dest: TcpDestination, on_close: Callable[[], None] | None = None) -> bool:
        """Connect `client` (holding what it sent so far) to an endpoint of `dest`; False (and the
        client closed) when none could be reached."""
        tried: frozenset[str] = frozenset()
        errors: list[str] = []
        for _ in range(2):
            ep = dest.choose(tried)
            if isinstance(ep, str):
                errors.append(ep)
                break
            ctx, server_name = self.tls.for_endpoint(ep, dest.caller)
            self.health.start(ep)
            t0 = perf_counter()
            try:
                up = await connect(ep, ctx, server_name, self.connect_timeout_s, TCP_ALPN if ctx else "")
            except ConnectFailed as exc:
                self.health.connect_failed(ep)
                errors.append(str(exc))
                tried = tried | {ep.address}
                continue
            self.health.success(ep, (perf_counter() - t0) * 1000.0)
            if client.transport.is_closing():
                up.transport.close()
                return False
            self._join(client, up, ep, ctx is not None, dest, on_close)
            return True
        log.warning("%s TCP connection for %s.%s closed: %s", self.direction, dest.service, dest.namespace,
                    "; ".join(errors))
        client.transport.close()
        return False

    def _join(self, client: Held, up: Held, ep: Endpoint, tls: bool, dest: TcpDestination,
              on_close: Callable[[], None] | None) -> None:
        conns = self.metrics.tcp(direction=self.direction, src_cluster=dest.src_cluster, dst_cluster=ep.cluster,
                                 dst_namespace=dest.namespace, dst_service=dest.service, tls=tls or self.inbound_tls)
        conns.open()

        def closed(pipe: Pipe) -> None:
            self.pipes.discard(pipe)
            conns.close(pipe.a_bytes, pipe.b_bytes)
            if on_close is not None:
                on_close()

        pipe = Pipe(self.idle_timeout_s, closed)
        self.pipes.add(pipe)
        first = preamble.encode(ep.path_prefix or "/", self.cluster) if ep.gateway else b""
        pipe.join(client.transport, up.transport, to_b=first, held_a=client.take(), held_b=up.take(),
                  framed_a=self.framed_clients, framed_b=ep.gateway)
        if client.eof and not pipe.a.eof_received():  # the client had already sent all it will
            client.transport.close()

    def close(self) -> None:
        for pipe in list(self.pipes):
            pipe.close()
