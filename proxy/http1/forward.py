"""One proxied exchange: a client's request to one upstream endpoint and the
response back, both bodies streamed. Shared by the outbound proxy and the gateway.

`forward()` never raises for upstream trouble: it returns an `Outcome` and,
when nothing was sent to the client yet, leaves the answer (retry elsewhere,
502, 504) to the caller.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import perf_counter

from proxy.config import Endpoint
from proxy.http1.client import ConnectFailed, UpstreamConnection, UpstreamError, UpstreamReset, UpstreamTimeout
from proxy.http1.pool import Pools
from proxy.http1.server import Request, Response
from proxy.http1.wire import LAST_CHUNK, Headers, chunk, connection_tokens, encode_headers, end_to_end


class Outcome:
    __slots__ = ("status", "ttfb_ms", "bytes", "error", "retryable", "connect_failed", "timed_out",
                 "client_gone")

    def __init__(self, *, status: int = 0, ttfb_ms: float = 0.0, bytes: int = 0, error: str = "",
                 retryable: bool = False, connect_failed: bool = False, timed_out: bool = False,
                 client_gone: bool = False) -> None:
        self.status = status  # the status the client received from forward(); 0 = nothing sent
        self.ttfb_ms = ttfb_ms
        self.bytes = bytes
        self.error = error
        self.retryable = retryable  # nothing reached the client or consumed its body: send elsewhere
        self.connect_failed = connect_failed
        self.timed_out = timed_out
        self.client_gone = client_gone  # the client left mid-response: not the upstream's fault


def request_head(req: Request, target: bytes, extra: Headers = (), drop: frozenset[bytes] = frozenset(),
                 held: bytes | None = None) -> bytes:
    """The head to send upstream; `held` is the whole body when it is already here
    (sent with a Content-Length), None when it will be streamed as it arrives."""
    listed = connection_tokens(req.connection) | drop if req.connection else drop
    if held is not None:
        has_length = held or req.chunked or req.content_length is not None
        framing = b"content-length: %d\r\n" % len(held) if has_length else b""
    elif req.chunked:
        framing = b"transfer-encoding: chunked\r\n"
    else:
        framing = b"content-length: %d\r\n" % (req.content_length or 0)
    return (req.method + b" " + target + b" HTTP/1.1\r\n" + encode_headers(end_to_end(req.headers, listed))
            + encode_headers(extra) + framing + b"\r\n")


async def _pump_body(req: Request, conn: UpstreamConnection) -> None:
    chunked = req.chunked
    body = req.body
    try:
        while data := await body.read():
            conn.write(chunk(data) if chunked else data)
            if conn.flow.paused:
                await conn.drain()
        if chunked:
            conn.write(LAST_CHUNK)
        conn.request_done = True
    except (ConnectionError, UpstreamError):
        conn.close()


async def forward(pools: Pools, ep: Endpoint, req: Request, resp: Response, *, target: bytes,
                  timeout_s: float, held: bytes | None, extra: Headers = (), drop: frozenset[bytes] = frozenset(),
                  on_head: Callable[[int], None] | None = None) -> Outcome:
    """`held`: the whole request body if it had all arrived (b"" for none), else None
    and the body is streamed from `req.body`."""
    loop = asyncio.get_running_loop()
    head = request_head(req, target, extra, drop, held)
    head_request = req.method == b"HEAD"
    conn: UpstreamConnection | None = None
    pump: asyncio.Task[None] | None = None
    t0 = perf_counter()
    try:
        for fresh in (False, True):
            try:
                conn = await (pools.fresh(ep) if fresh else pools.acquire(ep))
            except ConnectFailed as exc:
                return Outcome(error=str(exc), connect_failed=True, retryable=True)
            t0 = perf_counter()
            if held is not None:
                conn.begin(head + held, head_request=head_request, body=False)
            else:
                conn.begin(head, head_request=head_request, body=True)
                pump = loop.create_task(_pump_body(req, conn))
            timer = loop.call_later(timeout_s, conn.timeout,
                                    f"upstream {ep.address} did not answer within {timeout_s * 1000:g} ms")
            try:
                rhead = await conn.response_head()
                break
            except UpstreamReset as exc:
                conn.close()
                if pump is not None:
                    pump.cancel()
                replayable = held is not None or not req.body.read_started
                if exc.before_response and replayable and conn.reused and not fresh:
                    continue  # an idle keep-alive connection the upstream had already closed
                return Outcome(error=str(exc), ttfb_ms=_ms(t0), retryable=exc.before_response and replayable)
            except UpstreamTimeout as exc:
                return Outcome(error=str(exc), ttfb_ms=_ms(t0), timed_out=True)
            except UpstreamError as exc:
                conn.close()
                return Outcome(error=str(exc), ttfb_ms=_ms(t0))
            finally:
                timer.cancel()
        ttfb = _ms(t0)
        headers = rhead.headers
        resp.start(rhead.status, end_to_end(headers, connection_tokens(rhead.connection))
                   if rhead.connection else end_to_end(headers), rhead.length)
        if on_head is not None:
            on_head(rhead.status)
        sent = 0
        try:
            while data := await conn.read():
                sent += len(data)
                resp.write(data)
                if resp.paused:
                    await resp.drain()
        except UpstreamError as exc:
            resp.abort()
            conn.close()
            return Outcome(status=rhead.status, ttfb_ms=ttfb, bytes=sent, error=str(exc))
        except ConnectionError:
            conn.close()
            return Outcome(status=rhead.status, ttfb_ms=ttfb, bytes=sent, error="client closed the connection",
                           client_gone=True)
        resp.end()
        return Outcome(status=rhead.status, ttfb_ms=ttfb, bytes=sent)
    finally:
        if pump is not None and not pump.done():
            pump.cancel()  # the upstream answered before taking the whole body
            if conn is not None:
                conn.close()
        if conn is not None:
            pools.release(conn)


def _ms(t0: float) -> float:
    return (perf_counter() - t0) * 1000.0
