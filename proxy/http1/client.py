"""HTTP/1.1 client connection to an upstream: one exchange at a time, reusable.

The connection is driven by callbacks, not awaited: `begin(head, exchange, ...)`
writes a request head and hands the response to `exchange` (an `Exchange`) as
parser events: `response_head`, `response_body`* and `response_end`, or
`upstream_failed` with a typed error, so that the caller can tell a connection
that never answered (safe to retry elsewhere) from one that broke mid-response.
`write()` streams a request body; the exchange hears of the upstream's write
backpressure through `upstream_paused`.

The response-head timeout costs no timer per request: a connection keeps one
timer, armed at its earliest deadline; when it fires early (the exchange it was
armed for has finished and a later one begun), it re-arms for the current one.
"""
from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Final, Protocol, cast

import httptools

from proxy.http1.express import whole_response
from proxy.readinto import ReadInto
from proxy.http1.wire import Headers

_NEVER: Final = float("inf")
_RESET_ON_CLOSE: Final = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset


class UpstreamError(Exception):
    """The upstream exchange failed; `str()` says how, for 502 bodies and tap."""


class ConnectFailed(UpstreamError):
    pass


class UpstreamReset(UpstreamError):
    def __init__(self, message: str, *, before_response: bool) -> None:
        super().__init__(message)
        self.before_response = before_response


class UpstreamTimeout(UpstreamError):
    pass


class Exchange(Protocol):
    """What a connection reports an exchange's progress to."""

    def response_head(self, status: int, headers: Headers, length: int | None, connection: bytes) -> None:
        """`length`: the Content-Length, None when chunked or close-delimited;
        `connection`: the Connection header, b"" when absent."""

    def response_body(self, data: bytes) -> None: ...

    def response_end(self) -> None: ...

    def upstream_failed(self, exc: UpstreamError) -> None:
        """Called once at most, and nothing after it; the connection is closed."""

    def upstream_paused(self, paused: bool) -> None:
        """The upstream takes the request body slower than it is written (True), or caught up."""

    @property
    def timeout_message(self) -> str:
        """Why the exchange failed when no response head came in time."""


class ExpressExchange(Protocol):
    """An exchange begun by `begin_express` (see proxy/http1/express.py). Of Exchange's
    calls it takes only those that can come before the answer's first read."""

    def upstream_failed(self, exc: UpstreamError) -> None: ...

    def upstream_paused(self, paused: bool) -> None: ...

    @property
    def timeout_message(self) -> str: ...

    def response_whole(self, status: int, body_bytes: int, data: bytes | memoryview) -> None:
        """The whole response, in one read (`data`: only valid during the call)."""

    def general(self) -> Exchange:
        """The exchange that takes over when the response is not whole in one read."""


class UpstreamConnection(asyncio.BaseProtocol):
    """Over plain TCP: the transport hands each read to `data_received` as bytes."""

    def __init__(self, key: tuple, on_lost: Callable[[UpstreamConnection], None]) -> None:
        self.key = key
        self._on_lost = on_lost
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.closed = False
        self.reused = False  # served an exchange before this one
        self.idle_since = 0.0  # loop time it went back to the pool
        self._parser = httptools.HttpResponseParser(self)
        self._exchange: Exchange | None = None
        self._express: ExpressExchange | None = None  # the exchange under way hopes for a whole response
        self._answered = False  # the response head of this exchange came
        self._headers: Headers = []
        self._head_request = False
        self._got_bytes = False
        self._length: int | None = None
        self._chunked = False
        self._connection = b""
        self._informational = False
        self.request_done = False
        self.response_done = False
        self._keep_alive = False
        self._write_paused = False
        # the response-head timeout (see the module doc)
        self._deadline = _NEVER
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._deadline = _NEVER
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ex = self._exchange
        if ex is not None and not self.response_done:
            if not self._answered:
                self._fail(UpstreamReset(
                    "upstream closed the connection before answering" if not self._got_bytes
                    else "upstream closed the connection in the middle of the response head",
                    before_response=not self._got_bytes))
            elif self._length is None and not self._chunked:
                self.response_done = True  # a close-delimited body ends here
                ex.response_end()
            else:
                self._fail(UpstreamReset("upstream closed the connection in the middle of the response body",
                                         before_response=False))
        self._on_lost(self)

    def eof_received(self) -> None:
        """The upstream sends no more: the transport closes (connection_lost tells the exchange)."""

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._exchange is not None:
            self._exchange.upstream_paused(True)

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._exchange is not None:
            self._exchange.upstream_paused(False)

    def data_received(self, data: bytes | memoryview) -> None:
        self._got_bytes = True
        express = self._express
        if express is not None:
            self._express = None
            status, body_bytes = whole_response(data)
            if status:
                # all of it in this read: the parser, at a message boundary, never sees it
                self._deadline = _NEVER
                self._answered = self.response_done = self._keep_alive = True
                express.response_whole(status, body_bytes, data)
                return
            self._exchange = express.general()  # which the parser reports to from here on
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamError("upstream switched protocols; not supported"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed response from upstream: {exc}"))

    # -- parser callbacks (the state of a response head is reset once it is used) ----------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        low = name.lower()
        if low == b"content-length":
            self._length = int(value)
        elif low == b"transfer-encoding":
            self._chunked = value.lower().rstrip().endswith(b"chunked")
        elif low == b"connection":
            self._connection = value

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        headers = self._headers
        self._headers = []
        if 100 <= status < 200:
            self._informational = True  # 100 Continue and friends: not the answer
            self._length = None
            self._chunked = False
            self._connection = b""
            return
        self._deadline = _NEVER
        self._answered = True
        if self._chunked:
            self._length = None
        if self._exchange is not None:
            self._exchange.response_head(status, headers, self._length, self._connection)
        if self._head_request:
            # httptools cannot be told the response to a HEAD has no body: end the
            # message here and parse the next response with a fresh parser.
            parser = self._parser
            self._parser = httptools.HttpResponseParser(self)
            self._message_complete(parser)

    def on_body(self, data: bytes) -> None:
        if self._exchange is not None:
            self._exchange.response_body(data)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
        elif not self.response_done:
            self._message_complete(self._parser)

    def _message_complete(self, parser: httptools.HttpResponseParser) -> None:
        self.response_done = True
        self._keep_alive = parser.should_keep_alive()
        self._length = None
        self._chunked = False
        self._connection = b""
        if self._exchange is not None:
            self._exchange.response_end()

    def _fail(self, exc: UpstreamError) -> None:
        self._express = None
        ex, self._exchange = self._exchange, None
        self.abort()
        if ex is not None:
            ex.upstream_failed(exc)

    # -- exchange --------------------------------------------------------------------

    def begin(self, head: bytes, exchange: Exchange, *, head_request: bool, body: bool, timeout_s: float) -> None:
        """Write a request head (with the whole body, or `body` to follow through
        `write`) and report the response to `exchange`; if no response head arrives
        within `timeout_s`, the exchange fails with UpstreamTimeout."""
        self._exchange = exchange
        self._answered = False
        self._head_request = head_request
        self._got_bytes = False
        self.response_done = False
        self.request_done = not body
        self._keep_alive = False
        deadline = self._deadline = self.loop.time() + timeout_s
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._check_deadline)
        self.transport.write(head)
        if self._write_paused:
            exchange.upstream_paused(True)

    def begin_express(self, head: bytes, exchange: ExpressExchange, *, timeout_s: float) -> None:
        """`begin` a body-less request whose answer, when it comes whole in one read, goes
        to `exchange.response_whole`; otherwise `exchange.general()` takes over the
        exchange before any of the answer is parsed."""
        self._express = exchange
        self.begin(head, cast(Exchange, exchange), head_request=False, body=False, timeout_s=timeout_s)

    def _check_deadline(self) -> None:
        self._timer = None
        ex = self._exchange
        deadline = self._deadline
        if ex is None or deadline == _NEVER or self.closed:
            return
        if self.loop.time() >= deadline:
            self._fail(UpstreamTimeout(ex.timeout_message))
        else:
            self._timer = self.loop.call_at(deadline, self._check_deadline)

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def pause_reading(self, paused: bool) -> None:
        """Stop (or resume) reading the response: the client is slower than the upstream."""
        if not self.closed:
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def finish(self) -> None:
        """The exchange is over (answered, or given up): no more events for it."""
        self._exchange = None
        self._express = None
        self._deadline = _NEVER

    @property
    def reusable(self) -> bool:
        return (not self.closed and self.response_done and self.request_done and self._keep_alive
                and not self.transport.is_closing())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Give up on the exchange under way: reset the connection. A plain close would
        only say "no more request bytes", which an upstream may take for a client
        waiting for its answer (a half-close) and go on working for nobody."""
        if not self.closed:
            self.closed = True
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
            self.transport.abort()


class TlsUpstreamConnection(UpstreamConnection, ReadInto):
    """Over TLS: reads into the shared buffer (see ReadInto; on plain TCP that costs
    uvloop two calls instead of one a read, and spares nothing)."""
