"""Relay one client request to the endpoint its route chooses, per request.

Shared by the outbound proxy and the gateway: they decide the destination
(`Destination`), the relay picks an endpoint, forwards, retries an idempotent
request once on another endpoint when the first never answered, answers
502/503/504 with a text body saying why, and accounts for the attempt
(endpoint health), the request (metrics) and, when somebody listens, tap.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter

from proxy.config import Endpoint
from proxy.events import TapEvent
from proxy.http1.forward import Forward, request_head
from proxy.http1.pool import Pools
from proxy.http1.server import Request, Response
from proxy.http1.wire import not_forwarded
from proxy.metrics import Metrics, Series
from proxy.routing.health import EndpointHealth
from proxy.tap import TapExchange, TapHub, TapRoute

IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"))

# Plain-mode fallback (no mTLS yet): the outbound proxy names its cluster, and the
# service account its client claimed, in these headers on gateway hops, and the
# gateway believes them. With TLS the caller comes from its certificate and they
# are ignored. Never passed on to an endpoint.
SRC_CLUSTER_HEADER = b"x-meshtui-src-cluster"
SRC_SA_HEADER = b"x-meshtui-src-sa"
CLIENT_SA_HEADER = b"x-meshtui-service-account"  # a client's claim to the outbound proxy (meshtui curl --as)
_NOT_FORWARDED = not_forwarded(b"", frozenset((SRC_CLUSTER_HEADER, SRC_SA_HEADER, CLIENT_SA_HEADER)))
_NOTHING_TRIED: frozenset[str] = frozenset()
_TAP_ROUTES_MAX = 64  # per destination: its endpoints, with and without TLS


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
    # what the tap events of its requests share, per endpoint (by identity: id(endpoint), tls),
    # built while somebody taps; kept with the destination (a copy by dataclasses.replace shares it)
    tap_routes: dict[tuple[int, bool], tuple[Endpoint | None, TapRoute]] = field(
        default_factory=dict, repr=False, compare=False)


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
        self._ids = itertools.count(1)
        self._id_prefix = f"{cluster}:{direction}:"  # tap event ids
        self._series: dict[tuple[str, str, str, str, bool], Series] = {}

    def relay(self, req: Request, resp: Response, dest: Destination, target: bytes) -> None:
        """Answer `req` through callbacks (a handler returning None, see server.py).
        `target`: origin-form path and query for the endpoint (gateway endpoints get
        their path prefix in front)."""
        call = _Call(self, req, resp, dest, target)
        resp.on_cancel = call.cancel
        call.next_attempt()

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

    def _tap_open(self, req: Request, dest: Destination, ep: Endpoint | None, tls: bool) -> TapExchange | None:
        """Publish the request_init event of an attempt."""
        key = (id(ep), tls)
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
        return self.tap.open(route, next(self._ids), req.method, req.target)


class _Call(Forward):
    """One client request through the relay: its attempts (at most two), the answer
    when no endpoint gave one, and the accounting of each."""

    __slots__ = ("_relay", "_dest", "_target", "_started", "_tried", "_first", "_tls", "_tap")

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
        self._tap = relay._tap_open(req, dest, ep, tls) if relay.tap.active else None
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
            tap = relay._tap_open(self._req, self._dest, ep, tls)
        if tap is not None:
            ms = (perf_counter() - self._started) * 1000.0
            tap.phase("response_end", status, ms, ms, 0, reason)
