"""Relay HTTP/2 streams, each to the endpoint its route chooses: per request, not per
connection, so the calls of one client connection spread over every eligible endpoint.

Shared by the outbound proxy and the gateway (handlers.py decides the `Destination`).
Per stream: pick an endpoint, open a stream on a pooled upstream connection (pool.py),
pipe the request and the response both ways with flow control, and account for it:
endpoint health (a gRPC failure status counts as a failure, so outlier ejection sees it),
metrics (`grpc_status` classifies success), tap (`TapEvent.grpc_status`).

Deadlines: the response head must come within the route's timeout and within the gRPC
deadline (`grpc-timeout`, passed on unchanged); the whole call must end within the gRPC
deadline. A call is tried once more on another endpoint when the first never reached an
application: connect failed, or the stream was refused (REFUSED_STREAM, GOAWAY), or an
idempotent request whose upstream vanished before answering; never once its body
exceeded REPLAY_MAX_BYTES.
"""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from time import perf_counter

import ngh2

from proxy.config import Endpoint
from proxy.events import TapEvent
from proxy.http1.client import ConnectFailed
from proxy.http1.relay import IDEMPOTENT, SRC_CLUSTER_HEADER, SRC_SA_HEADER, Destination
from proxy.http2 import grpc
from proxy.http2.client import H2ClientConnection
from proxy.http2.connection import CANCEL, INTERNAL_ERROR, REFUSED_STREAM, Headers
from proxy.http2.messages import H2Request, request_head, response_head
from proxy.http2.pool import H2Pools
from proxy.http2.server import H2ServerConnection
from proxy.http2.tlsctx import MeshTLS
from proxy.metrics import Metrics, Series
from proxy.routing.health import EndpointHealth
from proxy.tap import TapHub
from proxy.tls import ReloadingTLS

REPLAY_MAX_BYTES = 64 * 1024
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_NOTHING_TRIED: frozenset[str] = frozenset()


class H2Relay:
    def __init__(self, *, cluster: str, direction: str, health: EndpointHealth, metrics: Metrics, tap: TapHub,
                 pools: H2Pools, tls: MeshTLS, inbound_tls: bool = False) -> None:
        self.cluster = cluster
        self.direction = direction
        self.health = health
        self.metrics = metrics
        self.tap = tap
        self.pools = pools
        self.tls = tls
        self.inbound_tls = inbound_tls
        self._ids = itertools.count(1)
        self._series: dict[tuple[str, str, str, str, bool], Series] = {}

    def start(self, conn: H2ServerConnection, sid: int, req: H2Request, dest: Destination, end_stream: bool,
              caller: ReloadingTLS | None = None) -> _Exchange:
        """Relay the stream `sid` of `conn`; returns its handler for the stream's further events."""
        exchange = _Exchange(self, conn, sid, req, dest, end_stream, caller)
        exchange.next_attempt()
        return exchange

    def account(self, dest: Destination, dst_cluster: str, tls: bool, status: int, t0: float,
                grpc_status: int | None, error: str) -> None:
        key = (dest.src_cluster, dst_cluster, dest.namespace, dest.service, tls)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.metrics.series(
                direction=self.direction, src_cluster=dest.src_cluster, dst_cluster=dst_cluster,
                dst_namespace=dest.namespace, dst_service=dest.service, tls=tls or self.inbound_tls)
        series.request()
        series.response(status, (perf_counter() - t0) * 1000.0, grpc_status=grpc_status, error=error)

    def event(self, req: H2Request, dest: Destination, ep: Endpoint | None, tls: bool) -> TapEvent:
        return TapEvent(
            id=f"{self.cluster}:{self.direction}:h2:{next(self._ids)}", kind="request_init",
            direction=self.direction, cluster=self.cluster, src_cluster=dest.src_cluster,
            src_identity=dest.src_identity, dst_cluster=ep.cluster if ep is not None else "",
            dst_namespace=dest.namespace, dst_service=dest.service,
            dst_endpoint=ep.address if ep is not None else "", method=req.method.decode("latin-1"),
            scheme="https" if self.inbound_tls else "http", authority=dest.authority,
            path=req.path.decode("latin-1"), tls=tls or self.inbound_tls, ts=time.time())


class _Upstream:
    """The handler of one attempt's upstream stream: passes its events to the exchange
    while that attempt is the current one."""

    __slots__ = ("exchange", "attempt", "conn", "sid")

    def __init__(self, exchange: _Exchange, attempt: int, conn: H2ClientConnection) -> None:
        self.exchange = exchange
        self.attempt = attempt
        self.conn = conn
        self.sid = 0  # set once the stream is open

    def on_head(self, headers: Headers, end_stream: bool) -> None:
        if self.exchange.attempt == self.attempt:
            self.exchange.response_head(headers, end_stream)

    def on_data(self, data: bytes, end_stream: bool) -> None:
        if self.exchange.attempt == self.attempt:
            self.exchange.response_data(data, end_stream)
        else:  # an abandoned attempt's stream, reset: free the connection's window
            self.conn.ack(self.sid, len(data))

    def on_trailers(self, headers: Headers) -> None:
        if self.exchange.attempt == self.attempt:
            self.exchange.response_trailers(headers)

    def on_closed(self, error_code: int, reason: str) -> None:
        if self.exchange.attempt == self.attempt:
            self.exchange.upstream_closed(error_code, reason)


class _Exchange:
    """One client stream through the relay: its attempts (at most two), and the answer
    when no endpoint gave one. Also the handler of the client stream's events."""

    __slots__ = ("relay", "down", "dsid", "req", "dest", "caller", "t0", "tried", "attempt", "ep", "tls", "up",
                 "usid", "task", "pending", "sent", "req_ended", "req_trailers", "down_unacked", "up_unacked",
                 "acking_down", "acking_up", "status", "ttfb_ms", "grpc_status", "bytes", "done", "timer",
                 "event", "first", "sent_at", "deadline_at")

    def __init__(self, relay: H2Relay, down: H2ServerConnection, dsid: int, req: H2Request, dest: Destination,
                 end_stream: bool, caller: ReloadingTLS | None) -> None:
        self.relay = relay
        self.down = down
        self.dsid = dsid
        self.req = req
        self.dest = dest
        self.caller = caller
        self.t0 = perf_counter()
        self.tried = _NOTHING_TRIED
        self.attempt = 0
        self.ep: Endpoint | None = None
        self.tls = False
        self.up: H2ClientConnection | None = None
        self.usid = 0
        self.task: asyncio.Task[None] | None = None
        self.pending: list[bytes] = []  # request body not yet sent to the current attempt
        self.sent: list[bytes] | None = []  # sent to it, kept for a retry; None once too big to keep
        self.req_ended = end_stream
        self.req_trailers: Headers | None = None
        self.down_unacked = 0
        self.up_unacked = 0
        self.acking_down = False
        self.acking_up = False
        self.status = 0
        self.ttfb_ms = 0.0
        self.grpc_status: int | None = None
        self.bytes = 0
        self.done = False
        self.timer: asyncio.TimerHandle | None = None
        self.event: TapEvent | None = None
        self.first: tuple[Endpoint, bool, int, str] | None = None  # a failed first attempt: ep, tls, status, why
        self.sent_at = 0.0
        loop = down.loop
        timeout = dest.timeout_s if req.deadline_s is None else min(dest.timeout_s, req.deadline_s)
        self.deadline_at = None if req.deadline_s is None else loop.time() + req.deadline_s
        self.timer = loop.call_later(timeout, self._timed_out)

    # -- attempts ------------------------------------------------------------------------

    def next_attempt(self) -> None:
        relay = self.relay
        ep = self.dest.choose(self.tried)
        if isinstance(ep, str):
            if self.first is None:
                self._answer(None, False, 503, ep)
            else:  # the retry found no other endpoint: report the first failure
                first_ep, tls, status, reason = self.first
                self._answer(first_ep, tls, status, reason)
            return
        self.attempt += 1
        self.ep = ep
        ctx, server_name = relay.tls.for_endpoint(ep, self.caller)
        self.tls = ctx is not None
        key = (ep.host, ep.port, ctx, server_name)
        if relay.tap.active:
            self.event = relay.event(self.req, self.dest, ep, self.tls)
            relay.tap.publish(self.event)
        relay.health.start(ep)
        conn = relay.pools.ready(key)
        if conn is not None:
            self._send(conn)
        else:
            self.task = self.down.loop.create_task(self._connect(ep, key, self.attempt))

    async def _connect(self, ep: Endpoint, key: tuple, attempt: int) -> None:
        try:
            conn = await self.relay.pools.connect(ep, key)
        except ConnectFailed as exc:
            self.task = None
            if not self.done and attempt == self.attempt:
                self.relay.health.connect_failed(ep)
                self._attempt_failed(502, str(exc), retryable=True)
            return
        self.task = None
        if not self.done and attempt == self.attempt:
            self._send(conn)

    def _send(self, conn: H2ClientConnection) -> None:
        ep = self.ep
        assert ep is not None
        req = self.req
        path, extra = req.path, []
        if ep.gateway:
            path = ep.path_prefix.encode() + path
            if not self.tls:  # plain mode: the gateway takes the caller's word for who it is
                extra.append((SRC_CLUSTER_HEADER, self.relay.cluster.encode()))
                if req.account:
                    extra.append((SRC_SA_HEADER, req.account))
        body, self.pending = self.pending, []
        end = self.req_ended and not body and self.req_trailers is None
        handler = _Upstream(self, self.attempt, conn)
        try:
            self.usid = handler.sid = conn.open(request_head(req, path, extra), end, handler)
        except ngh2.NGH2Error as exc:  # the connection filled up or is going away meanwhile
            self.pending = body
            self.relay.health.connect_failed(ep)
            self._attempt_failed(502, f"cannot open a stream to {ep.address}: {exc}", retryable=True)
            return
        self.up = conn
        self.sent_at = perf_counter()
        last = len(body) - 1
        for i, chunk in enumerate(body):
            conn.send_data(self.usid, chunk, self.req_ended and i == last and self.req_trailers is None)
            self._keep(chunk)
        if self.req_trailers is not None and self.req_ended:
            conn.trailers(self.usid, self.req_trailers)
        self._ack_down()

    def _keep(self, chunk: bytes) -> None:
        sent = self.sent
        if sent is not None:
            if sum(map(len, sent)) + len(chunk) > REPLAY_MAX_BYTES:
                self.sent = None
            else:
                sent.append(chunk)

    def _attempt_failed(self, status: int, reason: str, *, retryable: bool) -> None:
        """The current attempt got no response head: try another endpoint once, else answer."""
        ep = self.ep
        assert ep is not None
        relay = self.relay
        if self.up is not None:
            self.up.reset(self.usid, CANCEL)
            self.up = None
        if self.event is not None and relay.tap.active:
            relay.tap.publish(_derive(self.event, "response_end", duration_ms=self._elapsed_ms(), error=reason))
        if retryable and self.first is None and self.sent is not None:
            self.first = (ep, self.tls, status, reason)
            self.tried = self.tried | {ep.address}
            self.pending = self.sent + self.pending
            self.sent = []
            self.next_attempt()
            return
        self._answer(ep, self.tls, status, reason)

    # -- the client's stream (StreamHandler) ----------------------------------------------------

    def on_head(self, headers: Headers, end_stream: bool) -> None:
        pass

    def on_data(self, data: bytes, end_stream: bool) -> None:
        if self.done:
            self.down.ack(self.dsid, len(data))
            return
        self.down_unacked += len(data)
        if end_stream:
            self.req_ended = True
        if self.up is None:
            self.pending.append(data)
            return
        self.up.send_data(self.usid, data, end_stream)
        self._keep(data)
        self._ack_down()

    def on_trailers(self, headers: Headers) -> None:
        self.req_ended = True
        if self.done:
            return
        if self.up is None:
            self.req_trailers = headers
        else:
            self.up.trailers(self.usid, headers)

    def on_closed(self, error_code: int, reason: str) -> None:
        if self.done:
            return
        # the client reset the stream or went away: not the endpoint's fault, but the time
        # it had taken so far is a lower bound of its latency (as the HTTP/1.1 relay does)
        self.done = True
        self._stop_timer()
        if self.task is not None:
            self.task.cancel()
            self.task = None
        relay = self.relay
        if self.up is not None:
            self.up.reset(self.usid, CANCEL)
        if self.ep is not None:
            relay.health.success(self.ep, self._elapsed_ms())
        if self.event is not None and relay.tap.active:
            relay.tap.publish(_derive(self.event, "response_end", status=self.status, duration_ms=self._elapsed_ms(),
                                      bytes=self.bytes, error=f"client went away: {reason or 'stream closed'}"))

    def _ack_down(self) -> None:
        """Acknowledge the client's DATA once the upstream stream can take more."""
        if not self.down_unacked or self.up is None or self.acking_down:
            return
        if self.up.writable(self.usid):
            self.down.ack(self.dsid, self.down_unacked)
            self.down_unacked = 0
        else:
            self.acking_down = True
            self.up.when_writable(self.usid, self._down_may_send)

    def _down_may_send(self) -> None:
        self.acking_down = False
        if self.done:
            self.down.ack(self.dsid, self.down_unacked)
            self.down_unacked = 0
        else:
            self._ack_down()

    # -- the upstream's response ---------------------------------------------------------------

    def response_head(self, headers: Headers, end_stream: bool) -> None:
        status, out = response_head(headers)
        self.status = status
        self.ttfb_ms = (perf_counter() - self.sent_at) * 1000.0
        if end_stream:
            self.grpc_status = grpc.status_of(headers)
        self.down.respond(self.dsid, out, end_stream=end_stream)
        relay = self.relay
        if self.event is not None and relay.tap.active:
            relay.tap.publish(_derive(self.event, "response_init", status=status, latency_ms=self._elapsed_ms()))
        self._stop_timer()
        if self.deadline_at is not None and not end_stream:
            self.timer = self.down.loop.call_at(self.deadline_at, self._timed_out)

    def response_data(self, data: bytes, end_stream: bool) -> None:
        self.bytes += len(data)
        if not self.down.send_data(self.dsid, data, end_stream):
            self.up.ack(self.usid, len(data))  # type: ignore[union-attr]
            return
        self.up_unacked += len(data)
        self._ack_up()

    def response_trailers(self, headers: Headers) -> None:
        self.grpc_status = grpc.status_of(headers)
        try:
            self.down.h2.send_trailers(self.dsid, response_head(headers)[1])
        except ngh2.NGH2Error:
            return
        self.down.mark()

    def _ack_up(self) -> None:
        if not self.up_unacked or self.acking_up or self.up is None:
            return
        if self.down.writable(self.dsid) or self.done:
            self.up.ack(self.usid, self.up_unacked)
            self.up_unacked = 0
        else:
            self.acking_up = True
            self.down.when_writable(self.dsid, self._up_may_send)

    def _up_may_send(self) -> None:
        self.acking_up = False
        self._ack_up()

    def upstream_closed(self, error_code: int, reason: str) -> None:
        if self.done:
            return
        ep = self.ep
        assert ep is not None
        relay = self.relay
        if error_code == 0 and self.status:
            self._finish()
            return
        if not self.status:
            if error_code == 0:
                reason = f"upstream {ep.address} ended the stream without a response"
            relay.health.failure(ep, self._elapsed_ms())
            self.up = None
            refused = error_code == REFUSED_STREAM
            self._attempt_failed(502, f"upstream {ep.address}: {reason}",
                                 retryable=refused or self.req.method in IDEMPOTENT)
            return
        # broken off after the head: the client sees its stream reset
        self.done = True
        self._stop_timer()
        self.down.reset(self.dsid, INTERNAL_ERROR)
        relay.health.failure(ep, self.ttfb_ms)
        relay.account(self.dest, ep.cluster, self.tls, self.status, self.t0, self.grpc_status, "stream")
        if self.event is not None and relay.tap.active:
            relay.tap.publish(_derive(self.event, "response_end", status=self.status, duration_ms=self._elapsed_ms(),
                                      latency_ms=self.ttfb_ms, bytes=self.bytes, grpc_status=self.grpc_status,
                                      error=reason))

    def _finish(self) -> None:
        """The upstream's response is complete and on its way to the client."""
        self.done = True
        self._stop_timer()
        ep = self.ep
        assert ep is not None
        relay = self.relay
        if self.status >= 500 or grpc.failed(self.grpc_status):
            relay.health.failure(ep, self.ttfb_ms)
        else:
            relay.health.success(ep, self.ttfb_ms)
        relay.account(self.dest, ep.cluster, self.tls, self.status, self.t0, self.grpc_status, "")
        if self.event is not None and relay.tap.active:
            relay.tap.publish(_derive(self.event, "response_end", status=self.status, duration_ms=self._elapsed_ms(),
                                      latency_ms=self.ttfb_ms, bytes=self.bytes, grpc_status=self.grpc_status))

    # -- answers of our own and timeouts -------------------------------------------------------

    def _timed_out(self) -> None:
        self.timer = None
        if self.done:
            return
        ep = self.ep
        relay = self.relay
        loop = self.down.loop
        deadline_hit = self.deadline_at is not None and loop.time() >= self.deadline_at - 0.001
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if self.up is not None:
            self.up.reset(self.usid, CANCEL)
        if self.status:  # the gRPC deadline passed in the middle of the response
            self.done = True
            self.grpc_status = grpc.DEADLINE_EXCEEDED
            try:
                self.down.h2.send_trailers(self.dsid, [(b"grpc-status", b"4"),
                                                       (b"grpc-message", b"deadline exceeded at the proxy")])
            except ngh2.NGH2Error:
                self.down.reset(self.dsid, CANCEL)
            self.down.mark()
            if ep is not None:
                relay.health.success(ep, self.ttfb_ms)
                relay.account(self.dest, ep.cluster, self.tls, self.status, self.t0, self.grpc_status, "")
            return
        if ep is not None:
            relay.health.failure(ep, self._elapsed_ms())
        ms = self._elapsed_ms()
        if deadline_hit:
            self._answer(ep, self.tls, 504, f"deadline of {self.req.deadline_s * 1000:g} ms exceeded at the proxy "
                                            f"({ms:.0f} ms, no response from {ep.address if ep else 'any endpoint'})",
                         grpc_code=grpc.DEADLINE_EXCEEDED)
        else:
            where = ep.address if ep is not None else "any endpoint"
            self._answer(ep, self.tls, 504, f"upstream {where} did not answer within {self.dest.timeout_s * 1000:g} ms")

    def _answer(self, ep: Endpoint | None, tls: bool, status: int, reason: str, grpc_code: int | None = None) -> None:
        """Answer the client ourselves (no endpoint answered) and account for it."""
        self.done = True
        self._stop_timer()
        relay = self.relay
        if self.req.grpc:
            code = grpc_code if grpc_code is not None else grpc.code_for_http(status)
            self.down.respond(self.dsid, grpc.error_response(code, reason))
            self.status, self.grpc_status = 200, code
        else:
            self.down.respond(self.dsid, [(b":status", b"%d" % status), _TEXT], reason.encode() + b"\n")
            self.status = status
        if self.down_unacked:
            self.down.ack(self.dsid, self.down_unacked)
            self.down_unacked = 0
        relay.account(self.dest, ep.cluster if ep is not None else "", tls, self.status, self.t0, self.grpc_status,
                      "" if status == 503 else "upstream")
        if relay.tap.active:
            event = self.event or relay.event(self.req, self.dest, ep, tls)
            if self.event is None:
                relay.tap.publish(event)
            relay.tap.publish(_derive(event, "response_end", status=self.status, duration_ms=self._elapsed_ms(),
                                      grpc_status=self.grpc_status, error=reason))

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _elapsed_ms(self) -> float:
        return (perf_counter() - self.t0) * 1000.0


def _derive(event: TapEvent, kind: str, **changes: object) -> TapEvent:
    return dataclasses.replace(event, kind=kind, ts=time.time(), **changes)
