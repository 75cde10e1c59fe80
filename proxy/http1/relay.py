"""Relay one client request to the endpoint its route chooses, per request.

Shared by the outbound proxy and the gateway: they decide the destination
(`Destination`), the relay picks an endpoint, forwards, retries an idempotent
request once on another endpoint when the first never answered, answers
502/503/504 with a text body saying why, and accounts for the attempt
(endpoint health), the request (metrics) and, when somebody listens, tap.

Tap on the express lane is deferred: nobody is told that an express request
began until its answer comes (then its three events go out at once,
`TapHub.whole`) or until it has waited TAP_DEFER_S (then its request_init goes
out, with the time it began, and its later events follow as on the general
path). Most requests are answered well within the tap stream's flush interval,
so their subscribers see the same events at the same moment, for less than half
the work.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, cast

from proxy.config import Endpoint
from proxy.events import TapEvent
from proxy.http1.client import UpstreamConnection, UpstreamError
from proxy.http1.express import closing
from proxy.http1.forward import Forward, request_head
from proxy.http1.pool import PoolKey, Pools
from proxy.http1.server import HttpServerProtocol, Request, Response
from proxy.http1.wire import not_forwarded
from proxy.metrics import Metrics, Series
from proxy.routing.health import EndpointHealth, EndpointState
from proxy.tap import TapExchange, TapHub, TapRoute

# (Final: compiled, the request path reads it from a C static, not from the module's dict)
perf_counter: Final = time.perf_counter
IDEMPOTENT: Final = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"))

# Plain-mode fallback (no mTLS yet): the outbound proxy names its cluster, and the
# service account its client claimed, in these headers on gateway hops, and the
# gateway believes them. With TLS the caller comes from its certificate and they
# are ignored. Never passed on to an endpoint.
SRC_CLUSTER_HEADER: Final = b"x-meshtui-src-cluster"
SRC_SA_HEADER: Final = b"x-meshtui-src-sa"
CLIENT_SA_HEADER: Final = b"x-meshtui-service-account"  # a client's claim to the outbound proxy (meshtui curl --as)
_NOT_FORWARDED: Final = not_forwarded(b"", frozenset((SRC_CLUSTER_HEADER, SRC_SA_HEADER, CLIENT_SA_HEADER)))
_NOTHING_TRIED: Final[frozenset[str]] = frozenset()
_TAP_ROUTES_MAX: Final = 64  # per destination: its endpoints, with and without TLS
# an express request unanswered for this long has its request_init published (with the time
# it began) at the relay's next tick, TAP_DEFER_S apart; one answered sooner, its three
# events at once. (The admin's tap stream flushes every 25 ms: proxy/admin.py TAP_FLUSH_S.)
TAP_DEFER_S: Final = 0.01
_TAP_DEFERRED: Final = object()  # an _ExpressCall's _tap while its tap is deferred


@dataclass(slots=True)
class Destination:
    """Where the route layer sends requests (one, or all those of a route)."""

    namespace: str
    service: str
    choose: Callable[[frozenset[str]], Endpoint | str]  # endpoints already tried -> endpoint or 503 reason
    timeout_s: float
    authority: str
    src_cluster: str
    src_identity: str = ""
    # what the tap events of its requests share, per endpoint (by identity: id(endpoint) * 2 + tls,
    # an int: cheaper to hash than a tuple), built while somebody taps; kept with the destination
    # (a copy by dataclasses.replace shares it)
    tap_routes: dict[int, tuple[Endpoint | None, TapRoute]] = field(
        default_factory=dict, repr=False, compare=False)
    # the last of them used, and for what (most requests go where the one before went)
    tap_last: TapRoute | None = field(default=None, repr=False, compare=False)
    tap_last_ep: Endpoint | None = field(default=None, repr=False, compare=False)
    tap_last_tls: bool = field(default=False, repr=False, compare=False)


class Relay:
    def __init__(self, *, cluster: str, direction: str, health: EndpointHealth, metrics: Metrics,
                 tap: TapHub, pools: Pools, inbound_tls: bool = False) -> None:
        self.cluster = cluster
        self.direction = direction
        self.health = health
        self.metrics = metrics
        self.tap = tap
        self.pools = pools
        self.inbound_tls = inbound_tls
        self._plain_hop = SRC_CLUSTER_HEADER + b": " + cluster.encode() + b"\r\n"
        self._last_id = 0  # the number of the last request tapped
        self._id_prefix = f"{cluster}:{direction}:"  # tap event ids
        self._series: dict[tuple[str, str, str, str, bool], Series] = {}
        # the client connections whose express call began while somebody taps, since the timer
        # that opens the late ones last came: the connections, not the calls, so that a call
        # answered is freed at once, not held until the timer's next round
        self._deferring: set[HttpServerProtocol] = set()
        self._deferred_timer: asyncio.TimerHandle | None = None
        # time.time() - perf_counter(), as of the timer's last round: a deferred call's wall
        # clock time is its perf_counter() time plus this (the clocks drift apart by
        # microseconds at most between two rounds)
        self._wall_offset = 0.0

    def relay(self, req: Request, resp: Response, dest: Destination, target: bytes) -> None:
        """Answer `req` through callbacks (a handler returning None, see server.py).
        `target`: origin-form path and query for the endpoint (gateway endpoints get
        their path prefix in front)."""
        call = _Call(self, req, resp, dest, target)
        resp.on_cancel = call.cancel
        call.next_attempt()

    def express(self, proto: HttpServerProtocol, dest: Destination, head: bytes, forwarded: bytes,
                client_target: bytes, target: bytes) -> bool:
        """Take a simple GET off the express lane (see proxy/http1/express.py), or leave it to
        the general path (False, nothing done). `head`: as the client sent it, `client_target`
        its request target; `forwarded`: the same without the headers this hop consumed;
        `target`: for the endpoint (gateway endpoints get their path prefix in front). Its
        endpoint chosen, the request is the relay's: on a pooled connection it goes as it
        came, else the general path sends it."""
        ep = dest.choose(_NOTHING_TRIED)
        if isinstance(ep, str):
            return False  # (which the general path answers with 503)
        key = self.pools.key(ep)
        tls = key[2] is not None
        sent = target
        extra = b""
        if ep.gateway:
            sent = ep.path_prefix.encode() + target
            if not tls:
                extra = self._plain_hop
        if sent != client_target:
            forwarded = b"GET " + sent + forwarded[4 + len(client_target):]
        if extra:
            forwarded = forwarded[:-2] + extra + b"\r\n"
        call = _ExpressCall(self, proto, dest, head, client_target, target, ep, key, tls, forwarded)
        if self.tap.active:
            call._tap = _TAP_DEFERRED
            self._deferring.add(proto)
            if self._deferred_timer is None:
                self._wall_offset = time.time() - perf_counter()
                self._deferred_timer = asyncio.get_running_loop().call_later(TAP_DEFER_S, self._open_deferred)
        proto.express_started(call)
        call._state = self.health.start(ep)
        conn = self.pools.idle(key)
        if conn is None:
            call.general().forward(ep, key, forwarded)
        else:
            call.send(conn)
        return True

    def _account(self, dest: Destination, dst_cluster: str, tls: bool, status: int, t0: float,
                 error: str) -> None:
        key = (dest.src_cluster, dst_cluster, dest.namespace, dest.service, tls)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.metrics.series(
                direction=self.direction, src_cluster=dest.src_cluster, dst_cluster=dst_cluster,
                dst_namespace=dest.namespace, dst_service=dest.service, tls=tls or self.inbound_tls)
        series.exchange(status, (perf_counter() - t0) * 1000.0, error)

    # -- tap -------------------------------------------------------------------------

    def _tap_open(self, method: bytes, target: bytes, dest: Destination, ep: Endpoint | None,
                  tls: bool, ts: float | None = None) -> TapExchange | None:
        """Publish the request_init event of an attempt (begun at `ts`, now by default)."""
        self._last_id += 1
        return self.tap.open(self._tap_route(dest, ep, tls), self._last_id, method, target, ts)

    def _tap_route(self, dest: Destination, ep: Endpoint | None, tls: bool) -> TapRoute:
        last = dest.tap_last
        if last is not None and dest.tap_last_ep is ep and dest.tap_last_tls == tls:
            return last
        key = id(ep) * 2 + tls
        found = dest.tap_routes.get(key)
        if found is not None and found[0] is ep:
            route = found[1]
        else:
            if len(dest.tap_routes) >= _TAP_ROUTES_MAX:
                dest.tap_routes.clear()
            route = TapRoute(TapEvent(
                self._id_prefix, "request_init", self.direction, self.cluster, dest.src_cluster, dest.src_identity,
                ep.cluster if ep is not None else "", dest.namespace, dest.service,
                ep.address if ep is not None else "", "", "https" if self.inbound_tls else "http", dest.authority,
                "", tls=tls or self.inbound_tls))
            dest.tap_routes[key] = (ep, route)
        dest.tap_last, dest.tap_last_ep, dest.tap_last_tls = route, ep, tls
        return route

    def _open_deferred(self) -> None:
        """The timer's, every TAP_DEFER_S while some express call's tap is deferred: publish
        the request_init of each that has waited TAP_DEFER_S (so within twice that of its
        beginning). (A fixed period: re-armed for the oldest call's due time, a timer would
        come again and again within a millisecond, which uvloop rounds down to nothing.)"""
        self._deferred_timer = None
        now = perf_counter()
        self._wall_offset = time.time() - now
        waiting: set[HttpServerProtocol] = set()
        for proto in self._deferring:
            call = proto.express_call  # (its call now: a later one of the connection, or none)
            if isinstance(call, _ExpressCall) and call._tap is _TAP_DEFERRED:
                if now - call._started >= TAP_DEFER_S:
                    call.open_tap()
                else:
                    waiting.add(proto)
        self._deferring = waiting
        if waiting:
            self._deferred_timer = asyncio.get_running_loop().call_later(TAP_DEFER_S, self._open_deferred)


class _Call(Forward):
    """One client request through the relay: its attempts (at most two), the answer
    when no endpoint gave one, and the accounting of each."""

    def __init__(self, relay: Relay, req: Request, resp: Response, dest: Destination, target: bytes) -> None:
        # a body that came whole with the head is kept, so that a retry can send it again
        Forward.__init__(self, relay.pools, req, resp, req.body.take_complete() if req.has_body else b"",
                         dest.timeout_s)
        self._relay = relay
        self._dest = dest
        self._target = target
        self._started = perf_counter()
        self._tried = _NOTHING_TRIED
        # the first attempt, when it failed and another is tried: (endpoint, tls, timed out, error)
        self._first: tuple[Endpoint, bool, bool, str] | None = None
        self._tls = False
        self._tap: TapExchange | None = None  # the attempt's, while somebody taps

    def next_attempt(self) -> None:
        ep = self._dest.choose(self._tried)
        if isinstance(ep, str):
            if self._first is None:
                self._answer(None, False, None, 503, ep)
            else:  # the retry found no other endpoint: report the first failure
                first_ep, tls, timed_out, error = self._first
                self._answer(first_ep, tls, None, 504 if timed_out else 502, error)
            return
        relay = self._relay
        req = self._req
        dest = self._dest
        key = relay.pools.key(ep)
        self._tls = tls = key[2] is not None
        target = self._target
        extra = b""
        if ep.gateway:
            target = ep.path_prefix.encode() + target
            if not tls:
                extra = relay._plain_hop
                sa = req.header(CLIENT_SA_HEADER)
                if sa:
                    extra += SRC_SA_HEADER + b": " + sa + b"\r\n"
        self._tap = relay._tap_open(req.method, req.target, dest, ep, tls) if relay.tap.active else None
        relay.health.start(ep)
        self.forward(ep, key, request_head(req, target, extra, _NOT_FORWARDED, self._held))

    def cancel(self) -> None:
        """The client left (or the server gave up on its body). Not the endpoint's fault,
        but the time it had taken so far is a lower bound of its latency: the attempt
        is closed as answered."""
        if not self.done:
            super().cancel()
            self._relay.health.success(self.ep, (perf_counter() - self._started) * 1000.0)

    def attempt_head(self) -> None:
        if self._tap is not None:
            self._tap.phase("response_init", self.status, (perf_counter() - self._started) * 1000.0)

    def attempt_done(self) -> None:
        relay = self._relay
        ep = self.ep
        status = self.status
        health = relay.health
        if self.connect_failed:
            health.connect_failed(ep)
        elif status == 0 or status >= 500 or self.error:
            health.failure(ep, self.ttfb_ms)
        else:
            health.success(ep, self.ttfb_ms)
        tap = self._tap
        if status:
            relay._account(self._dest, ep.cluster, self._tls, status, self._started, self.error and "stream")
            if tap is not None:
                tap.phase("response_end", status, self.ttfb_ms, (perf_counter() - self._started) * 1000.0,
                          self.bytes, self.error)
            if not self._resp.finished:
                self._resp.end()
            return
        if self._first is None and self.retryable and self._req.method in IDEMPOTENT:
            if tap is not None:
                ms = (perf_counter() - self._started) * 1000.0
                tap.phase("response_end", 0, ms, ms, 0, self.error)
            self._first = (ep, self._tls, self.timed_out, self.error)
            self._tried = self._tried | {ep.address}
            # from an upstream's callback: back in the request's context (see Pools.key)
            self._req.context.run(self.next_attempt)
            return
        self._answer(ep, self._tls, tap, 504 if self.timed_out else 502, self.error)

    def _answer(self, ep: Endpoint | None, tls: bool, tap: TapExchange | None, status: int, reason: str) -> None:
        """Answer the client ourselves (no endpoint answered) and account for it."""
        relay = self._relay
        self._resp.send_text(status, reason)
        relay._account(self._dest, ep.cluster if ep is not None else "", tls, status, self._started,
                       "" if status == 503 else "upstream")
        if tap is None and relay.tap.active:
            tap = relay._tap_open(self._req.method, self._req.target, self._dest, ep, tls)
        if tap is not None:
            ms = (perf_counter() - self._started) * 1000.0
            tap.phase("response_end", status, ms, ms, 0, reason)


class _ExpressCall:
    """A simple GET on the express lane: its head goes to the endpoint as it came (with
    the gateway's path prefix, the plain hop's headers), and a whole response comes back
    to the client as it came. Until the client got a byte, `general()` can hand it over
    to a _Call (the general path) with the attempt under way: when no pooled connection
    was idle, when the answer is not whole in one read, when the attempt failed."""

    def __init__(self, relay: Relay, proto: HttpServerProtocol, dest: Destination, head: bytes,
                 client_target: bytes, target: bytes, ep: Endpoint, key: PoolKey, tls: bool, sent: bytes) -> None:
        self._relay = relay
        self._proto = proto
        self._dest = dest
        self._head = head
        self._client_target = client_target
        self._target = target
        self._ep = ep
        self._key = key
        self._tls = tls
        self._sent = sent
        self._tap: TapExchange | object | None = None  # _TAP_DEFERRED while the relay defers it
        self._started = self._t0 = perf_counter()
        self._conn: UpstreamConnection | None = None
        self._state: EndpointState | None = None  # the endpoint's health, once the attempt began

    def send(self, conn: UpstreamConnection) -> None:
        self._conn = conn
        conn.begin_express(self._sent, self, timeout_s=self._dest.timeout_s)

    def open_tap(self) -> None:
        """Publish its request_init, with the time it began (its tap was deferred)."""
        relay = self._relay
        self._tap = relay._tap_open(b"GET", self._client_target, self._dest, self._ep, self._tls,
                                    relay._wall_offset + self._started)

    def general(self) -> _Call:
        """The general path's _Call, with this attempt (sent on `_conn`, if any) under way."""
        if self._tap is _TAP_DEFERRED:
            self.open_tap()
        proto = self._proto
        req = proto.express_request(self._head)
        resp = proto.express_general(req)
        call = _Call(self._relay, req, resp, self._dest, self._target)
        call._started = self._started
        call._tls = self._tls
        call._tap = self._tap  # type: ignore[assignment]
        resp.on_cancel = call.cancel
        if self._conn is not None:
            call.adopt(self._conn, self._ep, self._key, self._sent, self._t0)
        return call

    # -- the upstream connection's events (ExpressExchange) -----------------------------

    def response_whole(self, status: int, body_bytes: int, data: bytes | memoryview) -> None:
        now = perf_counter()
        relay = self._relay
        conn = self._conn
        assert conn is not None
        conn.finish()
        relay.pools.release(conn)
        proto = self._proto
        response = data if isinstance(data, bytes) else bytes(data)
        proto.transport.write(closing(response) if proto.draining else response)
        ep = self._ep
        ttfb_ms = (now - self._t0) * 1000.0
        if status >= 500:
            relay.health.failure(ep, ttfb_ms)
        else:
            relay.health.succeeded(self._state, ttfb_ms)  # type: ignore[arg-type]
        relay._account(self._dest, ep.cluster, self._tls, status, self._started, "")
        tap = self._tap
        if tap is not None:
            ms = (now - self._started) * 1000.0
            if tap is _TAP_DEFERRED:  # nobody was told it began: all its events at once
                self._tap = None
                relay._last_id += 1
                relay.tap.whole(relay._tap_route(self._dest, ep, self._tls), relay._last_id, b"GET",
                                self._client_target, relay._wall_offset + self._started, status, ms, ttfb_ms,
                                body_bytes)
            else:
                cast(TapExchange, tap).head_and_end(status, ms, ttfb_ms, ms, body_bytes)
        proto.express_done()

    def upstream_failed(self, exc: UpstreamError) -> None:
        self.general().upstream_failed(exc)

    def upstream_paused(self, paused: bool) -> None:
        """(No request body to hold back.)"""

    @property
    def timeout_message(self) -> str:
        return f"upstream {self._ep.address} did not answer within {self._dest.timeout_s * 1000:g} ms"

    # -- the client's (ExpressCall) ---------------------------------------------------

    def cancel(self) -> None:
        """The client left: as _Call.cancel."""
        conn = self._conn
        if conn is not None:
            conn.finish()
            conn.abort()
        self._tap = None  # (a deferred one: nobody is told of it)
        self._relay.health.success(self._ep, (perf_counter() - self._started) * 1000.0)
