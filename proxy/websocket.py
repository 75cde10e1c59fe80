"""WebSocket through the outbound proxy and the gateway: an HTTP/1.1 request with
`Upgrade: websocket` is sent to the endpoint its route chooses (to another cluster's gateway
over mTLS, which sends it on to a local endpoint), and once the endpoint answers 101 both
connections are joined byte for byte (proxy/tcp/pipe.py) until either side closes.

`Upgrades` wraps the listener's HTTP/1.1 handler: every other request goes to it unchanged.
The request is accounted as one HTTP request (status 101 when upgraded), the tunnel as one
TCP connection (`tcp_open_connections`, bytes) of the same labels; tap sees the request,
the 101, and the end of the tunnel with its bytes.
"""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from time import perf_counter

from proxy.config import Endpoint
from proxy.events import TapEvent
from proxy.gateway import refusal
from proxy.http1.client import ConnectFailed
from proxy.http1.relay import CLIENT_SA_HEADER, SRC_CLUSTER_HEADER, SRC_SA_HEADER, Destination
from proxy.http1.server import Request, Response
from proxy.http1.wire import HOP_BY_HOP
from proxy.http2.settings import LongLived
from proxy.http2.tlsctx import MeshTLS
from proxy.metrics import Metrics
from proxy.outbound import RouteSource, split_target
from proxy.routing.health import EndpointHealth
from proxy.tap import TapExchange, TapHub, TapRoute
from proxy.tcp.connect import Held, connect
from proxy.tcp.pipe import Pipe
from proxy.tls import ProxyIdentities, ReloadingTLS, identity_from_peercert

HEAD_MAX = 16 * 1024
BODY_MAX = 1 << 20
_MESH_HEADERS = frozenset((CLIENT_SA_HEADER, SRC_CLUSTER_HEADER, SRC_SA_HEADER))


def is_websocket(req: Request) -> bool:
    if not req.upgrade or req.method != b"GET":
        return False
    value = req.header(b"upgrade")
    return value is not None and b"websocket" in value.lower()


def upgrade_head(req: Request, target: bytes, extra: list[tuple[bytes, bytes]]) -> bytes:
    """The request head for the endpoint: the client's, with Connection and Upgrade kept
    and the mesh's own headers replaced by `extra`."""
    lines = [req.method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in req.headers:
        if name.lower() in _MESH_HEADERS:
            continue
        lines += [name, b": ", value, b"\r\n"]
    for name, value in extra:
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


def parse_response_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """(status, headers) of an HTTP/1.1 response head; ValueError when it is not one."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP/1.1 response: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
    return int(parts[1]), headers


class Upgrades:
    """The HTTP/1.1 handler of a listener, with WebSocket upgrades tunnelled (see module doc).
    `decide(req)` -> (destination, target for the endpoint, caller's client identity) or
    (status, reason) to refuse."""

    def __init__(self, inner: Callable, decide: Callable, *, cluster: str, direction: str, health: EndpointHealth,
                 metrics: Metrics, tap: TapHub, tls: MeshTLS, settings: LongLived, connect_timeout_s: float,
                 inbound_tls: bool = False) -> None:
        self.inner = inner
        self.decide = decide
        self.cluster = cluster
        self.direction = direction
        self.health = health
        self.metrics = metrics
        self.tap = tap
        self.tls = tls
        self.settings = settings
        self.connect_timeout_s = connect_timeout_s
        self.inbound_tls = inbound_tls
        self.tunnels = 0  # open now
        self._ids = itertools.count(1)

    def __call__(self, req: Request, resp: Response):
        if not is_websocket(req):
            return self.inner(req, resp)
        decided = self.decide(req)
        if isinstance(decided[0], int):
            resp.send_text(*decided)
            return None
        task = asyncio.get_running_loop().create_task(self._tunnel(req, resp, *decided), context=req.context)
        resp.on_cancel = task.cancel
        return None

    async def _tunnel(self, req: Request, resp: Response, dest: Destination, target: bytes,
                      caller: ReloadingTLS | None) -> None:
        t0 = perf_counter()
        tried: frozenset[str] = frozenset()
        first_error = ""
        while True:
            ep = dest.choose(tried)
            if isinstance(ep, str):
                self._refuse(resp, dest, None, False, 502 if first_error else 503, first_error or ep, t0, req)
                return
            ctx, server_name = self.tls.for_endpoint(ep, caller)
            self.health.start(ep)
            try:
                up = await connect(ep, ctx, server_name, self.connect_timeout_s, "http/1.1" if ctx else "")
                break
            except ConnectFailed as exc:
                self.health.connect_failed(ep)
                if first_error:
                    self._refuse(resp, dest, ep, ctx is not None, 502, first_error, t0, req)
                    return
                first_error, tried = str(exc), tried | {ep.address}
        tls = ctx is not None
        try:
            await self._upgrade(req, resp, dest, target, ep, tls, up, t0)
        except asyncio.CancelledError:  # the client left before the upgrade
            up.transport.close()
            self.health.success(ep, (perf_counter() - t0) * 1000.0)
            raise

    async def _upgrade(self, req: Request, resp: Response, dest: Destination, target: bytes, ep: Endpoint, tls: bool,
                       up: Held, t0: float) -> None:
        extra: list[tuple[bytes, bytes]] = []
        if ep.gateway:
            target = ep.path_prefix.encode() + target
            if not tls:  # plain mode: the gateway takes the caller's word for who it is
                extra.append((SRC_CLUSTER_HEADER, self.cluster.encode()))
                account = req.header(CLIENT_SA_HEADER)
                if account:
                    extra.append((SRC_SA_HEADER, account))
        up.transport.write(upgrade_head(req, target, extra))
        try:
            end = await asyncio.wait_for(up.read_until(b"\r\n\r\n", HEAD_MAX), dest.timeout_s)
            status, headers = parse_response_head(bytes(up.buffer[:end - 4]))
        except (asyncio.TimeoutError, ConnectionError, ValueError) as exc:
            up.transport.close()
            self.health.failure(ep, (perf_counter() - t0) * 1000.0)
            timed_out = isinstance(exc, asyncio.TimeoutError)
            why = (f"upstream {ep.address} did not answer the upgrade within {dest.timeout_s * 1000:g} ms"
                   if timed_out else f"upstream {ep.address} gave no valid answer to the upgrade: {exc}")
            self._refuse(resp, dest, ep, tls, 504 if timed_out else 502, why, t0, req)
            return
        ttfb_ms = (perf_counter() - t0) * 1000.0
        if status != 101:
            await self._pass_refusal(resp, dest, ep, tls, up, end, status, headers, t0, req)
            return
        self.health.success(ep, ttfb_ms)
        client = req.transport
        if client.is_closing():
            up.transport.close()
            return
        http1 = client.get_protocol()
        resp.on_cancel = None
        series = self.metrics.series(direction=self.direction, src_cluster=dest.src_cluster, dst_cluster=ep.cluster,
                                     dst_namespace=dest.namespace, dst_service=dest.service,
                                     tls=tls or self.inbound_tls)
        series.exchange(101, ttfb_ms)
        tap = self._tap_open(req, dest, ep, tls)
        if tap is not None:
            tap.phase("response_init", 101, ttfb_ms)
        conns = self.metrics.tcp(direction=self.direction, src_cluster=dest.src_cluster, dst_cluster=ep.cluster,
                                 dst_namespace=dest.namespace, dst_service=dest.service, tls=tls or self.inbound_tls)
        conns.open()
        self.tunnels += 1

        def closed(pipe: Pipe) -> None:
            self.tunnels -= 1
            conns.close(pipe.a_bytes, pipe.b_bytes)
            http1.connection_lost(None)  # the HTTP/1.1 side of the client connection is done too
            if tap is not None:
                tap.phase("response_end", 101, ttfb_ms, (perf_counter() - t0) * 1000.0, pipe.b_bytes, pipe.error)

        Pipe(self.settings.tunnel_idle_timeout_s, closed).join(client, up.transport, to_a=up.take())

    async def _pass_refusal(self, resp: Response, dest: Destination, ep: Endpoint, tls: bool, up: Held, end: int,
                            status: int, headers: list[tuple[bytes, bytes]], t0: float, req: Request) -> None:
        """The endpoint answered without upgrading: that answer goes to the client."""
        length = next((int(v) for n, v in headers if n == b"content-length" and v.isdigit()), None)
        length = min(length or 0, BODY_MAX)
        try:
            await asyncio.wait_for(up.fill(end + length), dest.timeout_s)
        except asyncio.TimeoutError:
            pass
        body = bytes(up.buffer[end:end + length])
        up.transport.close()
        if status >= 500:
            self.health.failure(ep, (perf_counter() - t0) * 1000.0)
        else:
            self.health.success(ep, (perf_counter() - t0) * 1000.0)
        resp.send(status, [(n, v) for n, v in headers if n not in HOP_BY_HOP], body)
        self._account(dest, ep, tls, status, t0, req, "")

    def _refuse(self, resp: Response, dest: Destination, ep: Endpoint | None, tls: bool, status: int, reason: str,
                t0: float, req: Request) -> None:
        resp.send_text(status, reason)
        self._account(dest, ep, tls, status, t0, req, "" if status == 503 else "upstream")

    def _account(self, dest: Destination, ep: Endpoint | None, tls: bool, status: int, t0: float, req: Request,
                 error: str) -> None:
        series = self.metrics.series(direction=self.direction, src_cluster=dest.src_cluster,
                                     dst_cluster=ep.cluster if ep else "", dst_namespace=dest.namespace,
                                     dst_service=dest.service, tls=tls or self.inbound_tls)
        series.exchange(status, (perf_counter() - t0) * 1000.0, error)
        tap = self._tap_open(req, dest, ep, tls)
        if tap is not None:
            tap.phase("response_end", status, 0.0, (perf_counter() - t0) * 1000.0)

    def _tap_open(self, req: Request, dest: Destination, ep: Endpoint | None, tls: bool) -> TapExchange | None:
        """Publish the request_init event of a tunnel, while somebody taps."""
        if not self.tap.active:
            return None
        route = TapRoute(TapEvent(
            id=f"{self.cluster}:{self.direction}:ws:", kind="request_init", direction=self.direction,
            cluster=self.cluster, src_cluster=dest.src_cluster, src_identity=dest.src_identity,
            dst_cluster=ep.cluster if ep else "", dst_namespace=dest.namespace, dst_service=dest.service,
            dst_endpoint=ep.address if ep else "", scheme="wss" if self.inbound_tls else "ws",
            authority=dest.authority, tls=tls or self.inbound_tls))
        return self.tap.open(route, next(self._ids), b"GET", req.target)


def outbound_decider(cluster: str, routes: RouteSource, identities: ProxyIdentities | None):
    """Where an upgrade request sent to the outbound proxy goes (as proxy/outbound.py decides)."""
    def decide(req: Request):
        authority, target = split_target(req)
        if not authority:
            return 400, "request has no Host header: send the service name as Host (svc.ns[:port])"
        caller = None
        if identities is not None:
            account = req.header(CLIENT_SA_HEADER) or b"default"
            caller = identities.client(account)
            if caller is None:
                return 403, f"cluster {cluster} has no identity for service account {account.decode('latin-1')!r}"
        table = routes.table
        name = authority.decode("latin-1")
        route = table.resolve(name)
        if route is None:
            return 503, f"no route for {name}: not a service known in cluster {cluster}"
        key = req.peer[0].encode() if route.balancer == "hashing" and req.peer else b""
        dest = Destination(namespace=route.namespace, service=route.name,
                           choose=lambda tried: table.choose(route, hash_key=key, exclude=tried),
                           timeout_s=route.timeout_ms / 1000.0, authority=name, src_cluster=cluster)
        return dest, target, caller
    return decide


def gateway_decider(cluster: str, routes: RouteSource, tls: bool, timeout_s: float):
    """Where an upgrade request sent to the gateway goes (as proxy/gateway.py decides)."""
    def decide(req: Request):
        table = routes.table
        found = table.gateway_rule(req.target.decode("latin-1"))
        if found is None:
            return 404, f"no export at path {req.path.decode('latin-1')} in cluster {cluster}"
        rule, rest = found
        if tls:
            ident = identity_from_peercert(req.transport.get_extra_info("ssl_object"))
            if ident is None:
                return 403, "client certificate carries no SPIFFE identity"
            src_cluster, account, identity = ident.cluster, ident.service_account, ident.uri
        else:
            src_cluster = (req.header(SRC_CLUSTER_HEADER) or b"").decode("latin-1")
            claimed = req.header(SRC_SA_HEADER)
            account, identity = (claimed.decode("latin-1") if claimed else None), ""
        reason = refusal(rule, src_cluster, account)
        if reason is not None:
            return 403, reason
        key = src_cluster.encode() if rule.balancer == "hashing" else b""
        dest = Destination(namespace=rule.namespace, service=rule.service,
                           choose=lambda tried: table.choose_local(rule, hash_key=key, exclude=tried),
                           timeout_s=timeout_s, authority=f"{rule.service}.{rule.namespace}:{rule.port}",
                           src_cluster=src_cluster, src_identity=identity)
        return dest, rest.encode("latin-1"), None
    return decide
