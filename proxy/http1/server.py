"""HTTP/1.1 server: one protocol per connection (over TLS reading into a shared buffer,
see flow.ReadInto), httptools parser callbacks.

A handler `handler(request, response)` is called once per request. An `async
def` handler runs as a task and the response is complete when it returns. A
plain function that returns None answers through callbacks instead (no task:
the proxy's request path): the response is complete at `response.end()` or
`abort()`, and `response.on_cancel`, if set, hears that the server gave up on
the request (client gone, body timeout). Requests on one connection are
answered in order: a pipelined request waits (and reading pauses) until the
response before it is complete. Bodies stream both ways with flow control (see
flow.py). A bad client (garbage, oversized or slow head, slow body) is answered
with 400/431/408 and closed; other connections never notice.
"""
from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import Context, copy_context
from typing import Any, Final, Protocol, cast

import httptools

from proxy.config import Limits
from proxy.http1.express import forwardable, simple_get
from proxy.http1.errors import ClientGone
from proxy.http1.flow import NO_BODY, BodyStream, EmptyBody, WriteFlow
from proxy.readinto import ReadInto
from proxy.http1.wire import CONTINUE, LAST_CHUNK, STATUS_LINES, Headers, encode_headers, status_line, text_response

log = logging.getLogger(__name__)

LINGER_S: Final = 2.0  # how long a refused client may go on sending before the connection is cut
_NEVER: Final = float("inf")


def _nothing() -> None:
    pass


class Request:
    method: bytes
    target: bytes
    headers: Headers
    version: str
    keep_alive: bool
    host: bytes
    expect_continue: bool
    content_length: int | None
    chunked: bool
    upgrade: bool
    connection: bytes  # value of the Connection header, b"" when absent
    body: BodyStream | EmptyBody
    transport: asyncio.Transport
    peer: tuple[str, int] | None
    context: Context  # the handler runs in it (a copy of the server's, one per request, as a task would)

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def path(self) -> bytes:
        """The target without its query."""
        return self.target.partition(b"?")[0]

    def header(self, name: bytes) -> bytes | None:
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None


class Response:
    """Writes one response: `start` + `write`* + `end`, or `send` at once.

    The head is held back until the first body bytes or `end`, so a small
    response leaves in one write.
    """

    def __init__(self, proto: HttpServerProtocol, req: Request) -> None:
        self._proto = proto
        self._transport = proto.transport
        self._req = req
        self._head_method = req.method == b"HEAD"
        self._v10 = req.version == "1.0"
        self.keep_alive = req.keep_alive
        self.started = False
        self.finished = False
        self.status = 0
        self.bytes_sent = 0
        self._pending = b""
        self._chunked = False
        self._body_ok = False
        self.detached = False  # answered through callbacks: complete at end() or abort()
        self.on_cancel: Callable[[], None] | None = None

    def start(self, status: int, headers: Headers, length: int | None = None) -> None:
        """`headers` must not hold framing or hop-by-hop headers; `length` None
        means unknown (chunked to HTTP/1.1 clients, close-delimited to 1.0)."""
        self.start_encoded(status, encode_headers(headers), length)

    def start_encoded(self, status: int, headers: bytes, length: int | None = None) -> None:
        """`start` with the header lines already encoded (`name: value\r\n` each)."""
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        self.status = status
        proto = self._proto
        if proto.draining or proto.refusal is not None:
            self.keep_alive = False
        elif self._req.expect_continue and self._req.body.on_first_read is not None:
            self.keep_alive = False  # refused before 100-continue: the body may or may not follow
        self._body_ok = body_ok = not self._head_method and status >= 200 and status != 204 and status != 304
        if length is not None:
            framing = b"content-length: %d\r\n" % length if status >= 200 and status != 204 else b""
        elif not body_ok:
            framing = b""
        elif self._v10:
            self.keep_alive = False
            framing = b""
        else:
            self._chunked = True
            framing = b"transfer-encoding: chunked\r\n"
        if not self.keep_alive:
            framing += b"connection: close\r\n"
        elif self._v10:
            framing += b"connection: keep-alive\r\n"
        self._pending = b"".join((STATUS_LINES.get(status) or status_line(status), headers, framing, b"\r\n"))

    def write(self, data: bytes | bytearray) -> None:
        if not data or not self._body_ok:
            return
        self.bytes_sent += len(data)
        if self._chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)  # type: ignore[str-format]
        if self._pending:
            data = self._pending + data
            self._pending = b""
        self._transport.write(data)

    def flush_head(self) -> None:
        """Send the head now, not with the first body bytes (a stream that may wait)."""
        if self._pending:
            self._transport.write(self._pending)
            self._pending = b""

    @property
    def paused(self) -> bool:
        """The client is not taking bytes as fast as they are written: `await drain()`."""
        return self._proto.flow.paused

    async def drain(self) -> None:
        await self._proto.flow.drain()

    def on_writable(self, callback: Callable[[], None]) -> None:
        """Call `callback` once when the client has taken the bytes written (while `paused`)."""
        self._proto.flow.on_resume = callback

    def end(self) -> None:
        tail = LAST_CHUNK if self._chunked and self._body_ok else b""
        if self._pending:
            tail = self._pending + tail
            self._pending = b""
        if tail:
            self._transport.write(tail)
        self.finished = True
        if self.detached:
            self._proto._response_complete(self._req, self)

    def send(self, status: int, headers: Headers, body: bytes | bytearray = b"") -> None:
        self.start(status, headers, len(body))
        self.write(body)
        self.end()

    def send_text(self, status: int, text: str) -> None:
        self.send(status, [(b"content-type", b"text/plain; charset=utf-8")], text.encode() + b"\n")

    def abort(self) -> None:
        """Give up on a response already under way: the client sees it cut short."""
        self.keep_alive = False
        self.finished = True
        self._transport.close()
        if self.detached:
            self._proto._response_complete(self._req, self)


Handler = Callable[[Request, Response], Awaitable[None] | None]


class ExpressCall(Protocol):
    def cancel(self) -> None:
        """The client is gone."""


# The express lane (proxy/http1/express.py): `express(connection, match, head)` is offered
# each simple GET that arrives whole on an idle connection (`head` as it is passed on,
# see express.forwardable), before any parsing; it takes
# the request (True: it called `express_started`, and calls `express_done` or
# `express_general`) or leaves it to the parser and the handler (False).
Express = Callable[["HttpServerProtocol", "re.Match[bytes]", bytes], bool]


class _Refuse(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# `_active` while the express lane has the connection's request
_EXPRESS: Final = Request()
_EXPRESS.body = NO_BODY


class HttpServerProtocol(asyncio.BaseProtocol):
    def __init__(self, handler: Handler, limits: Limits, connections: set[Any],
                 express: Express | None = None) -> None:
        self._handler = handler
        self._express = express
        self._express_call: ExpressCall | None = None
        self._limits = limits
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.peer: tuple[str, int] | None = None
        self.peer_identity: object = None  # cached by the gateway: the TLS peer's identity
        self.flow = WriteFlow()
        self.draining = False
        self.refusal: tuple[int, str] | None = None  # answered once the active response is done
        self._broken = False  # the parser failed: ignore further bytes
        self._read_paused = False
        self._body_paused = False
        self._pipeline: deque[Request] = deque()
        self._active: Request | None = None
        self._active_resp: Response | None = None
        self._task: asyncio.Task[None] | None = None
        self._parsing: Request | None = None  # head complete, body not yet
        self._held: Request | None = None  # head complete, not dispatched before its read is parsed
        self._in_head = False
        self._head_bytes = 0
        self._head_raw = 0
        self._url = b""
        self._headers: Headers = []
        # One deadline per connection (idle, head, body or linger), checked by the
        # server's sweep: no timer is created or cancelled per request.
        self.deadline = _NEVER
        self._expire: Callable[[], None] = _nothing

    # -- connection events ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        self._connections.add(self)
        self._set_timer(self._limits.idle_timeout_s, self._idle_timeout)

    def eof_received(self) -> bool:
        """The client will send nothing more. Right after complete requests, it waits for
        their answers (a half-close, as `nc -N` does): they are sent, then the connection
        closes. Otherwise it has gone (TCP cannot tell a full close from a half-close):
        the connection closes now and the request under way, if any, is dropped -- in
        the middle of a request, with nothing asked, or while an answer is streaming."""
        if self._parsing is not None or self._in_head or self._broken:
            return False
        if self._express_call is not None:
            self.draining = True
            return True
        resp = self._active_resp
        if not self._pipeline and (resp is None or resp.started):
            return False
        self.draining = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._cancel_timer()
        self.flow.lost(ClientGone("client connection closed"))
        if self._parsing is not None:
            body = cast(BodyStream, self._parsing.body)  # (a request with a body: parsed until its end)
            body.fail(ClientGone("client closed the connection during the request body"))
        self._pipeline.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        elif self._express_call is not None:
            call, self._express_call = self._express_call, None
            call.cancel()
        else:
            self._cancel_detached()

    def _cancel_detached(self) -> None:
        resp = self._active_resp
        if resp is not None and resp.detached and resp.on_cancel is not None:
            cancel, resp.on_cancel = resp.on_cancel, None
            resp.finished = True
            cancel()

    def pause_writing(self) -> None:
        self.flow.pause()

    def resume_writing(self) -> None:
        self.flow.resume()

    def data_received(self, data: bytes | memoryview) -> None:
        """Also how a protocol sniffer hands over the bytes it read first."""
        if self._broken:
            return
        express = self._express
        if express is not None and self._active is None and not self._in_head and self._parsing is None \
                and not self.draining:
            lim = self._limits
            m = simple_get(data, lim.max_header_bytes, lim.max_headers)
            if m is not None and express(self, m, forwardable(data, m)):
                return
        was_in_head = self._in_head
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request was dispatched as plain HTTP (upgrade headers are hop-by-hop
            # and not passed on); what follows it on this connection is not HTTP.
            self._broken = True
            self.draining = True
            self._dispatch_held()
            return
        except httptools.HttpParserError as exc:
            self._broken = True
            self._held = None
            cause = exc.__context__  # what a callback raised
            if isinstance(cause, _Refuse):
                self._refuse(cause.status, cause.reason)
            else:
                self._refuse(400, f"malformed request: {exc}")
            return
        if self._in_head:
            # httptools holds a header value until it is complete: bound the bytes of a
            # head spread over several reads, so one endless header cannot fill memory.
            if was_in_head:
                self._head_raw += len(data)
                if self._head_raw > self._limits.max_header_bytes:
                    self._broken = True
                    self._refuse(431, f"request header fields larger than {self._limits.max_header_bytes} bytes")
        self._dispatch_held()

    # -- parser callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._head_raw = 0
        self._url = b""
        self._headers = []
        self._set_timer(self._limits.header_timeout_s, self._head_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._limits.max_header_bytes:
            raise _Refuse(431, f"request line and headers larger than {self._limits.max_header_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self._limits.max_header_bytes:
            raise _Refuse(431, f"request header fields larger than {self._limits.max_header_bytes} bytes")
        if len(self._headers) > self._limits.max_headers:
            raise _Refuse(431, f"more than {self._limits.max_headers} request header fields")

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        req = Request()
        req.method = parser.get_method()
        req.target = self._url
        req.headers = headers = self._headers
        req.version = version = parser.get_http_version()
        req.upgrade = upgrade = parser.should_upgrade()
        req.keep_alive = parser.should_keep_alive() and not self.draining and not upgrade
        req.transport = self.transport
        req.peer = self.peer
        host = connection = b""
        expect = chunked = False
        length: int | None = None
        for name, value in headers:
            low = name.lower()
            if low == b"host":
                host = value.rstrip(b" \t")  # (llhttp keeps trailing whitespace, which is not the value's)
            elif low == b"content-length":
                length = int(value)  # llhttp has checked it
            elif low == b"transfer-encoding":
                chunked = value.lower().rstrip().endswith(b"chunked")
            elif low == b"connection":
                connection = value
            elif low == b"expect" and value.lower() == b"100-continue":
                expect = True
        req.host = host
        req.connection = connection
        req.content_length = length
        req.chunked = chunked
        if chunked or length:
            req.body = BodyStream(self)
            req.expect_continue = expect and version == "1.1"
            self._parsing = req
            self._set_timer(self._limits.request_timeout_s, self._request_timeout)
            # held until this read is parsed: a body that came with the head is then whole
            self._held = req
        else:
            req.body = NO_BODY
            req.expect_continue = False
            self._cancel_timer()
            self._dispatch(req)

    def on_body(self, data: bytes) -> None:
        cast(BodyStream, self._parsing.body).feed(data)  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        req = self._parsing
        if req is None:
            return  # a body-less request: finished at its head
        self._parsing = None
        cast(BodyStream, req.body).finish()
        self._cancel_timer()
        if self._held is req:
            self._held = None
            self._dispatch(req)
        self._maybe_idle()

    # -- request cycle -------------------------------------------------------------

    def _dispatch_held(self) -> None:
        req = self._held
        if req is not None:
            self._held = None
            self._dispatch(req)

    def _dispatch(self, req: Request) -> None:
        if self._active is None:
            self._start(req)
        else:
            self._pipeline.append(req)
            self._update_reading()

    def _start(self, req: Request) -> None:
        resp = Response(self, req)
        self._active = req
        self._active_resp = resp
        if req.expect_continue and not req.body.complete:
            req.body.on_first_read = self._send_continue
        req.context = context = copy_context()
        try:
            result = context.run(self._handler, req, resp)
        except Exception as exc:
            self._handler_failed(req, resp, exc)
            result = None
        if result is not None:
            self._task = self._loop.create_task(self._run(req, resp, result), context=context)
        elif resp.finished:
            self._response_complete(req, resp)
        else:
            resp.detached = True

    def _send_continue(self) -> None:
        if self._active is not None and not self._active.body.complete and not self.transport.is_closing():
            self.transport.write(CONTINUE)

    async def _run(self, req: Request, resp: Response, handling: Awaitable[None]) -> None:
        try:
            await handling
        except asyncio.CancelledError:
            return  # the client left
        except Exception as exc:
            self._handler_failed(req, resp, exc)
        if not resp.finished:
            if resp.started:
                resp.abort()
            else:
                resp.send_text(500, "internal error: the handler sent no response")
        self._response_complete(req, resp)

    @staticmethod
    def _handler_failed(req: Request, resp: Response, exc: Exception) -> None:
        log.exception("handler failed on %s %s", req.method.decode(), req.target.decode("latin-1"),
                      exc_info=exc)
        if not resp.started:
            resp.keep_alive = False
            resp.send_text(500, f"internal error: {type(exc).__name__}: {exc}")
        elif not resp.finished:
            resp.abort()

    def _response_complete(self, req: Request, resp: Response) -> None:
        self._active = None
        self._active_resp = None
        self._task = None
        resp.on_cancel = None  # (its owner usually holds the response: a cycle otherwise)
        transport = self.transport
        if transport.is_closing():
            return
        if self.refusal is not None:
            self._close_lingering(text_response(*self.refusal, close=True))
            return
        if not resp.keep_alive:
            transport.close()
            return
        if not req.body.complete:
            if req.body.on_first_read is not None:
                # 100-continue never sent: the client may not send the body at all
                transport.close()
                return
            req.body.discard()
        self._serve_next()

    def _serve_next(self) -> None:
        """The connection is free: the next pipelined request, else wait for one."""
        if self._pipeline:
            nxt = self._pipeline.popleft()
            self._update_reading()
            self._start(nxt)
        else:
            self._update_reading()
            self._maybe_idle()

    # -- the express lane (see `Express`) ------------------------------------------------

    @property
    def express_call(self) -> ExpressCall | None:
        """The express call under way on this connection, if any."""
        return self._express_call

    def express_started(self, call: ExpressCall) -> None:
        self._active = _EXPRESS
        self._express_call = call
        self.deadline = _NEVER

    def express_done(self) -> None:
        """The express call wrote its whole response."""
        self._active = None
        self._express_call = None
        if self.transport.is_closing():
            return
        if self.refusal is not None:
            self._close_lingering(text_response(*self.refusal, close=True))
        elif self._pipeline or self._read_paused or self._body_paused or self.draining or self._in_head \
                or self._parsing is not None:
            self._serve_next()
        else:  # the common case, as _serve_next would have it: wait idle for the next request
            self.deadline = self._loop.time() + self._limits.idle_timeout_s
            self._expire = self._idle_timeout

    def express_general(self, req: Request) -> Response:
        """The general path takes over the express call's request `req` (made by
        `express_request`): its response, answered through callbacks."""
        resp = Response(self, req)
        resp.detached = True
        self._active = req
        self._active_resp = resp
        self._express_call = None
        return resp

    def express_request(self, head: bytes) -> Request:
        """The Request of a simple GET's `head` (see proxy/http1/express.py)."""
        lines = head[:-4].split(b"\r\n")
        req = Request()
        req.method, req.target, _ = lines[0].split(b" ")
        req.headers = headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name, value.strip(b" \t")))
            if name.lower() == b"host":
                req.host = value.strip(b" \t")
        req.version = "1.1"
        req.keep_alive = not self.draining
        req.expect_continue = req.chunked = req.upgrade = False
        req.content_length = None
        req.connection = b""
        req.body = NO_BODY
        req.transport = self.transport
        req.peer = self.peer
        req.context = Context()  # (the caller's identity, CALLER_TLS, is the default one)
        return req

    # -- flow control ----------------------------------------------------------------

    def body_backpressure(self, paused: bool) -> None:
        self._body_paused = paused
        self._update_reading()

    def _update_reading(self) -> None:
        pause = self._body_paused or bool(self._pipeline) or self.refusal is not None
        if pause != self._read_paused and not self.transport.is_closing():
            self._read_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    # -- refusals and timeouts -------------------------------------------------------------

    def _refuse(self, status: int, reason: str) -> None:
        """Answer a bad client and close; after the response under way, if any."""
        self._pipeline.clear()
        if self._active is None:
            self._close_lingering(text_response(status, reason, close=True))
        else:
            self.refusal = (status, reason)
            self._update_reading()

    def _set_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self.deadline = self._loop.time() + delay
        self._expire = callback

    def _cancel_timer(self) -> None:
        self.deadline = _NEVER

    def expire(self) -> None:
        """Called by the sweep once `deadline` has passed."""
        self.deadline = _NEVER
        self._expire()

    def _maybe_idle(self) -> None:
        if self._active is None and self._parsing is None and not self._in_head:
            if self.draining:
                self.transport.close()
            else:
                self._set_timer(self._limits.idle_timeout_s, self._idle_timeout)

    def _idle_timeout(self) -> None:
        self.transport.close()

    def _head_timeout(self) -> None:
        self._broken = True
        self._refuse(408, f"request head not received within {self._limits.header_timeout_s:g} s")

    def _request_timeout(self) -> None:
        req = self._parsing
        resp = self._active_resp
        if req is not None and self._active is req and resp is not None and not resp.started:
            if self._task is not None:
                self._task.cancel()
            else:
                self._cancel_detached()
            resp.finished = True
            self._close_lingering(text_response(
                408, f"request body not received within {self._limits.request_timeout_s:g} s", close=True))
        else:
            self.transport.close()

    def _close_lingering(self, response: bytes) -> None:
        """Send a last response and close so that the client gets to read it: stop
        writing, then read and drop what it still sends for a moment (closing at once
        with unread bytes would reset the connection and destroy the response)."""
        transport = self.transport
        transport.write(response)
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._broken = True
        self._pipeline.clear()
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        self._set_timer(LINGER_S, transport.close)

    def drain_and_close(self) -> None:
        """Server shutdown: finish the response under way, then close."""
        self.draining = True
        if self.transport is not None and self._active is None and self._parsing is None:
            self.transport.close()


class TlsHttpServerProtocol(HttpServerProtocol, ReadInto):
    """Over TLS: reads into the shared buffer (see ReadInto; on plain TCP that costs
    uvloop two calls instead of one a read, and spares nothing). uvloop reads into the
    buffer only for a protocol that is no asyncio.Protocol: hence BaseProtocol above."""


class HttpServer:
    """A listening HTTP/1.1 server and the connections it accepted.

    Offers `sockets`, `close()` and `wait_closed()` like asyncio.Server, and
    `shutdown(grace_s)` for a drain bounded in time.
    """

    def __init__(self, handler: Handler, *, limits: Limits | None = None,
                 ssl_context: ssl.SSLContext | None = None, express: Express | None = None) -> None:
        self.handler = handler
        self.express = express
        self.limits = limits or Limits()
        self.ssl_context = ssl_context
        self.connections: set[Any] = set()  # HTTP/1.1 connections, and what proxy/protocols.py adds
        # asyncio's or uvloop's Server (Any: uvloop's `sockets` is a list, typeshed says a tuple)
        self.server: Any = None
        self.address: tuple[str, int] = ("", 0)  # where it listens (the first socket)
        lim = self.limits
        # timeouts fire up to one tick late
        self.tick_s = min(1.0, max(0.02, min(lim.header_timeout_s, lim.idle_timeout_s, lim.request_timeout_s) / 5))
        self._sweeper: asyncio.TimerHandle | None = None

    async def listen(self, host: str, port: int, **kwargs: Any) -> HttpServer:
        loop = asyncio.get_running_loop()
        if self.ssl_context is not None:  # a handshake is part of the head: bounded alike
            kwargs.setdefault("ssl_handshake_timeout", self.limits.header_timeout_s)
        self.server = await loop.create_server(self.protocol, host, port, ssl=self.ssl_context, reuse_address=True,
                                               backlog=1024, **kwargs)
        self.address = self.server.sockets[0].getsockname()[:2]
        self._sweeper = loop.call_later(self.tick_s, self._sweep)
        return self

    def protocol(self) -> asyncio.BaseProtocol:
        """The protocol of a new connection (a subclass may first sniff what it speaks)."""
        return self.http1()

    def http1(self) -> HttpServerProtocol:
        kind = HttpServerProtocol if self.ssl_context is None else TlsHttpServerProtocol
        return kind(self.handler, self.limits, self.connections, self.express)

    def http1_stream(self) -> HttpServerProtocol:
        """For a connection that hands over its reads (a stream of a mux session)."""
        return HttpServerProtocol(self.handler, self.limits, self.connections, self.express)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in [c for c in self.connections if c.deadline <= now]:
            conn.expire()
        self._sweeper = loop.call_later(self.tick_s, self._sweep)

    @property
    def sockets(self) -> tuple:
        return tuple(self.server.sockets) if self.server is not None else ()

    def close(self) -> None:
        """Stop accepting; idle connections close now, busy ones after their response."""
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.drain_and_close()

    async def wait_closed(self, grace_s: float = 5.0) -> None:
        """Wait for the connections to finish (at most `grace_s`), then cut the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.server is not None:
            await self.server.wait_closed()

    async def shutdown(self, grace_s: float = 5.0) -> None:
        self.close()
        await self.wait_closed(grace_s)
