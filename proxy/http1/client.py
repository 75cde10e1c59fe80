"""HTTP/1.1 client connection to an upstream: one exchange at a time, reusable.

`begin()` writes a request head; `write()`/`drain()` stream the request body;
`response_head()` waits for the response head; `read()` streams its body.
Failures are typed so the caller can tell a connection that never answered
(safe to retry elsewhere) from one that broke mid-response.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

import httptools

from proxy.http1.flow import BodyStream, WriteFlow
from proxy.http1.wire import Headers


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


class ResponseHead:
    __slots__ = ("status", "headers", "length", "connection")

    def __init__(self, status: int, headers: Headers, length: int | None, connection: bytes) -> None:
        self.status = status
        self.headers = headers
        self.length = length  # Content-Length, None when chunked or close-delimited
        self.connection = connection


class UpstreamConnection(asyncio.Protocol):
    def __init__(self, key: tuple, on_lost: Callable[[UpstreamConnection], None]) -> None:
        self.key = key
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.closed = False
        self.reused = False  # served an exchange before this one
        self.flow = WriteFlow()
        self.idle_since = 0.0  # loop time it went back to the pool
        self._parser = httptools.HttpResponseParser(self)
        self._head_waiter: asyncio.Future[ResponseHead] | None = None
        self._head: ResponseHead | None = None
        self._body: BodyStream | None = None
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

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.flow.lost(UpstreamReset("upstream closed the connection while the request was sent",
                                     before_response=not self._got_bytes))
        if self._head_waiter is not None and not self._head_waiter.done():
            self._head_waiter.set_exception(UpstreamReset(
                "upstream closed the connection before answering" if not self._got_bytes
                else "upstream closed the connection in the middle of the response head",
                before_response=not self._got_bytes))
        elif self._body is not None and not self.response_done:
            if self._head is not None and self._head.length is None and not self._chunked:
                self.response_done = True  # a close-delimited body ends here
                self._body.finish()
            else:
                self._body.fail(UpstreamReset("upstream closed the connection in the middle of the response body",
                                              before_response=False))
        self._on_lost(self)

    def pause_writing(self) -> None:
        self.flow.pause()

    def resume_writing(self) -> None:
        self.flow.resume()

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamError("upstream switched protocols; not supported"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed response from upstream: {exc}"))

    def body_backpressure(self, paused: bool) -> None:
        if self.closed:
            return
        if paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    # -- parser callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._length = None
        self._chunked = False
        self._connection = b""

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
        if 100 <= status < 200:
            self._informational = True  # 100 Continue and friends: not the answer
            return
        length = None if self._chunked else self._length
        self._head = head = ResponseHead(status, self._headers, length, self._connection)
        self._body = BodyStream(self)
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(head)
        if self._head_request:
            # httptools cannot be told the response to a HEAD has no body: end the
            # message here and parse the next response with a fresh parser.
            self._message_complete()
            self._parser = httptools.HttpResponseParser(self)

    def on_body(self, data: bytes) -> None:
        if self._body is not None:
            self._body.feed(data)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if not self.response_done:
            self._message_complete()

    def _message_complete(self) -> None:
        self.response_done = True
        self._keep_alive = self._parser.should_keep_alive()
        if self._body is not None:
            self._body.finish()

    def _fail(self, exc: UpstreamError) -> None:
        if self._head_waiter is not None and not self._head_waiter.done():
            self._head_waiter.set_exception(exc)
        elif self._body is not None:
            self._body.fail(exc)
        self.close()

    # -- exchange --------------------------------------------------------------------

    def begin(self, head: bytes, *, head_request: bool, body: bool) -> None:
        """Write a request head (and start an exchange)."""
        self._head_waiter = self._loop.create_future()
        self._head = None
        self._body = None
        self._head_request = head_request
        self._got_bytes = False
        self.response_done = False
        self.request_done = not body
        self._keep_alive = False
        self.transport.write(head)

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        await self.flow.drain()

    def timeout(self, message: str) -> None:
        """Fail a pending response head (the route's timeout expired)."""
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(UpstreamTimeout(message))
        self.close()

    async def response_head(self) -> ResponseHead:
        waiter = self._head_waiter
        assert waiter is not None, "begin() first"
        try:
            return await waiter
        finally:
            self._head_waiter = None

    async def read(self) -> bytes:
        """Next bytes of the response body; b"" once complete."""
        assert self._body is not None, "response_head() first"
        return await self._body.read()

    @property
    def reusable(self) -> bool:
        return (not self.closed and self.response_done and self.request_done and self._keep_alive
                and not self.transport.is_closing())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

