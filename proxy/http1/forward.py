"""Proxied attempts: a client's request to one upstream endpoint and the response
back, both bodies streamed. Shared by the outbound proxy and the gateway.

A `Forward` runs in protocol callbacks, with no task unless a new connection
has to be opened: the client's request head (and its body, when it came whole
with the head) leaves in one write on a pooled connection; the upstream's
response head and body go straight to the client as the parser delivers them.
Backpressure either way pauses the reading side. It never raises for upstream
trouble: when an attempt is over, `attempt_done` (the subclass's policy) reads
the outcome fields and, when nothing was sent to the client yet, decides the
answer (another attempt, 502, 504).
"""
from __future__ import annotations

import asyncio
import time
from typing import Final

from proxy.config import Endpoint
from proxy.http1.client import ConnectFailed, UpstreamConnection, UpstreamError, UpstreamReset, UpstreamTimeout
from proxy.http1.pool import PoolKey, Pools
from proxy.http1.server import Request, Response
from proxy.http1.wire import HOP_BY_HOP, LAST_CHUNK, Headers, chunk, encode_end_to_end, not_forwarded

# (Final: compiled, the request path reads it from a C static, not from the module's dict)
perf_counter: Final = time.perf_counter


def request_head(req: Request, target: bytes, extra: bytes = b"", skip: frozenset[bytes] = HOP_BY_HOP,
                 held: bytes | None = None) -> bytes:
    """The head to send upstream, without the headers `skip` names (hop-by-hop ones at
    least: see wire.not_forwarded); `held` is the whole body when it is already here
    (sent with a Content-Length), None when it will be streamed as it arrives."""
    if req.connection:
        skip = skip | not_forwarded(req.connection)
    if held is not None:
        has_length = held or req.chunked or req.content_length is not None
        framing = b"content-length: %d\r\n" % len(held) if has_length else b""
    elif req.chunked:
        framing = b"transfer-encoding: chunked\r\n"
    else:
        framing = b"content-length: %d\r\n" % (req.content_length or 0)
    return b"".join((req.method, b" ", target, b" HTTP/1.1\r\n", encode_end_to_end(req.headers, skip), extra,
                     framing, b"\r\n"))


class Forward:
    """The attempts of one client request, one at a time (`forward`).

    Outcome of the last attempt, for `attempt_done`: `ep`, `status` (what the
    client received from it; 0 = nothing sent), `ttfb_ms`, `bytes`, `error`,
    `retryable` (nothing reached the client or consumed its body: send
    elsewhere), `connect_failed`, `timed_out`.
    """

    _conn: UpstreamConnection | None
    _task: asyncio.Task[None] | None

    def __init__(self, pools: Pools, req: Request, resp: Response, held: bytes | None, timeout_s: float) -> None:
        """`held`: the whole request body if it had all arrived (b"" for none), else None
        and the body is piped from `req.body`."""
        self._pools = pools
        self._req = req
        self._resp = resp
        self._held = held
        self._timeout_s = timeout_s
        self.done = True  # no attempt under way

    def forward(self, ep: Endpoint, key: PoolKey, head: bytes) -> None:
        """Start an attempt on `ep` (reached as `key` says) with request head `head`."""
        self._attempt(ep, key, head)
        conn = self._pools.idle(key)
        if conn is None:
            self._task = asyncio.get_running_loop().create_task(self._connect())
        else:
            self._send(conn)

    def adopt(self, conn: UpstreamConnection, ep: Endpoint, key: PoolKey, head: bytes, t0: float) -> None:
        """Take over an attempt with a body-less request head `head` already sent on
        `conn` at `t0` (by the express lane), before anything of its answer was parsed."""
        self._attempt(ep, key, head)
        self._conn = conn
        self._t0 = t0

    def _attempt(self, ep: Endpoint, key: PoolKey, head: bytes) -> None:
        self.ep = ep
        self._key = key
        self._head = head
        self._conn = None
        self._task = None
        self._t0 = 0.0
        self._fresh = False  # on a new connection after an idle one proved stale
        self._piping = False
        self._reading_paused = False
        self.done = False
        self.status = 0
        self.ttfb_ms = 0.0
        self.bytes = 0
        self.error = ""
        self.retryable = False
        self.connect_failed = False
        self.timed_out = False

    def attempt_head(self) -> None:
        """The response head went to the client (`status`)."""
        raise NotImplementedError

    def attempt_done(self) -> None:
        """The attempt is over: answered, broken or never answered (see the outcome)."""
        raise NotImplementedError

    def cancel(self) -> None:
        """The client is gone: drop the attempt and its connection, report nothing."""
        if self.done:
            return
        self.done = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._unpipe()
        conn = self._conn
        if conn is not None:
            conn.finish()
            conn.abort()

    @property
    def timeout_message(self) -> str:
        return f"upstream {self.ep.address} did not answer within {self._timeout_s * 1000:g} ms"

    # -- connecting and sending ------------------------------------------------------

    async def _connect(self) -> None:
        try:
            conn = await self._pools.connect(self.ep, self._key)
        except ConnectFailed as exc:
            self._task = None
            self.connect_failed = True
            self.retryable = True
            self.error = str(exc)
            self._finish()
            return
        self._task = None
        if self.done:  # cancelled while connecting but the connection was made anyway
            conn.close()
            return
        self._send(conn)

    def _send(self, conn: UpstreamConnection) -> None:
        self._conn = conn
        self._t0 = perf_counter()
        held = self._held
        req = self._req
        if held is not None:
            conn.begin(self._head + held if held else self._head, self, head_request=req.method == b"HEAD",
                       body=False, timeout_s=self._timeout_s)
        else:
            conn.begin(self._head, self, head_request=req.method == b"HEAD", body=True, timeout_s=self._timeout_s)
            self._piping = True
            req.body.pipe(self)

    def _replayable(self) -> bool:
        return self._held is not None or not self._req.body.read_started

    def _unpipe(self) -> None:
        if self._piping:
            self._piping = False
            self._req.body.unpipe()

    # -- the request body, piped from the client (BodySink) ------------------------------

    def body_data(self, data: bytes) -> None:
        conn = self._conn
        if conn is not None and not conn.closed:
            conn.write(chunk(data) if self._req.chunked else data)

    def body_end(self) -> None:
        conn = self._conn
        if conn is not None and not conn.closed:
            if self._req.chunked:
                conn.write(LAST_CHUNK)
            conn.request_done = True

    def body_failed(self, exc: BaseException) -> None:
        # the client's body broke off (it left): the upstream must not wait for the rest
        self._unpipe()
        if self._conn is not None:
            self._conn.abort()

    def upstream_paused(self, paused: bool) -> None:
        if self._piping:
            self._req.body.hold(paused)

    # -- the response, from the upstream connection (Exchange) -----------------------------

    def response_head(self, status: int, headers: Headers, length: int | None, connection: bytes) -> None:
        self.ttfb_ms = (perf_counter() - self._t0) * 1000.0
        self.status = status
        self._resp.start_encoded(status, encode_end_to_end(headers, not_forwarded(connection) if connection
                                                            else HOP_BY_HOP), length)
        self.attempt_head()

    def response_body(self, data: bytes) -> None:
        self.bytes += len(data)
        resp = self._resp
        resp.write(data)
        if resp.paused and not self._reading_paused:
            self._reading_paused = True
            self._conn.pause_reading(True)  # type: ignore[union-attr]
            resp.on_writable(self._client_caught_up)

    def _client_caught_up(self) -> None:
        if self._reading_paused and not self.done:
            self._reading_paused = False
            self._conn.pause_reading(False)  # type: ignore[union-attr]

    def response_end(self) -> None:
        conn = self._conn
        assert conn is not None
        if not conn.request_done:
            conn.close()  # the upstream answered before taking the whole body
        elif self._reading_paused:
            self._reading_paused = False
            conn.pause_reading(False)
        if self._piping:
            self._unpipe()
        conn.finish()
        self._pools.release(conn)
        self.done = True
        self.attempt_done()

    def upstream_failed(self, exc: UpstreamError) -> None:
        self._unpipe()
        if self.status:  # broken off in the middle of the response body
            self._resp.abort()
            self.error = str(exc)
            self._finish()
            return
        self.ttfb_ms = (perf_counter() - self._t0) * 1000.0
        if isinstance(exc, UpstreamReset):
            replayable = self._replayable()
            if exc.before_response and replayable and self._conn is not None and self._conn.reused \
                    and not self._fresh:
                # an idle keep-alive connection the upstream had already closed: once more, on a new one
                self._fresh = True
                self._conn = None
                self._task = asyncio.get_running_loop().create_task(self._connect())
                return
            self.retryable = exc.before_response and replayable
        elif isinstance(exc, UpstreamTimeout):
            self.timed_out = True
        self.error = str(exc)
        self._finish()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.attempt_done()
