"""One listener for every protocol a connection may speak: HTTP/1.1 (the default), HTTP/2
and, on a gateway, an opaque TCP stream for one export; on a service port's listener
(proxy/tcp/listeners.py), opaque bytes for that port's service.

The choice is made once per connection: by TLS ALPN when the handshake agreed on a
protocol (`meshtui-mux/1`: a mux session whose streams are HTTP/1.1 connections, proxy/mux;
`h2`, `meshtui-tcp`, `http/1.1`), else by its first bytes: the HTTP/2 client
preface (prior knowledge h2c), the MESHTUI-TCP preamble (proxy/tcp/preamble.py), anything
else is HTTP/1.1. A listener with an `opaque` protocol detects instead, as Linkerd does
(`detect()`): the h2 preface or an HTTP/1 request line is HTTP, anything else is opaque,
and so is a connection that has not sent a byte (or only an undecided start) within
`detect_timeout_s`: a server-speaks-first protocol (SMTP, MySQL, ...) sends nothing until
its server did. The connection is then handed to that protocol's handler with the bytes
read so far. HTTP connections are in the server's `connections`, so its shutdown drains
them; opaque ones belong to whoever made them.
"""
from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from typing import Final

from proxy.http1.server import HttpServer
from proxy.mux import MUX_ALPN
from proxy.mux.connector import MAX_CLIENT_STREAMS
from proxy.mux.session import MuxSession
from proxy.tcp.preamble import MAGIC as TCP_MAGIC

H2_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TCP_ALPN: Final = "meshtui-tcp"

HTTP1, H2, OPAQUE = "http/1.1", "h2", "opaque"
# a request line's method (RFC 9110 token; the longest registered method has 17 characters)
_TOKEN: Final = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,24}"
_REQUEST_LINE: Final = re.compile(_TOKEN + rb" [^\s]+ HTTP/1\.[01]\r?\n")
_REQUEST_LINE_START: Final = re.compile(_TOKEN + rb"(?: [^\s]*(?: ([^\s]*)(\r?))?)?")

# makes the protocol of a connection; gets the server's `connections` set to join
ProtocolFactory = Callable[[set], asyncio.Protocol]


def detect(buffer: bytes, max_line: int = 16 * 1024) -> str | None:
    """What a client connection speaks by its first bytes: H2 (the client preface), HTTP1
    (an HTTP/1.x request line), OPAQUE (anything else); None while the bytes so far could
    still start either (pure)."""
    n = len(buffer)
    if buffer[:len(H2_PREFACE)] == H2_PREFACE[:n]:
        return H2 if n >= len(H2_PREFACE) else None
    end = buffer.find(b"\n", 0, max_line)
    if end >= 0:
        return HTTP1 if _REQUEST_LINE.fullmatch(buffer, 0, end + 1) else OPAQUE
    if n >= max_line:
        return OPAQUE
    start = _REQUEST_LINE_START.fullmatch(buffer)
    if start is None:
        return OPAQUE
    version, cr = start.group(1), start.group(2)
    if version is None:
        return None
    if cr:
        return None if version in (b"HTTP/1.0", b"HTTP/1.1") else OPAQUE
    return None if b"HTTP/1.1".startswith(version) or b"HTTP/1.0".startswith(version) else OPAQUE


class ProtocolServer(HttpServer):
    """An HttpServer (same handler, limits, shutdown) whose connections may also speak
    HTTP/2 (`h2`), carry opaque TCP (`tcp`, by the MESHTUI-TCP preamble) or, when `opaque`
    is given, be detected as not HTTP and handed to it."""

    def __init__(self, handler, *, limits=None, ssl_context=None, h2: ProtocolFactory | None = None,
                 tcp: ProtocolFactory | None = None, opaque: Callable[[], asyncio.Protocol] | None = None) -> None:
        super().__init__(handler, limits=limits, ssl_context=ssl_context)
        self.h2 = h2
        self.tcp = tcp
        self.opaque = opaque

    def protocol(self) -> asyncio.Protocol:
        return _Sniffer(self)  # picks HTTP/1.1, HTTP/2, TCP or opaque per connection

    def mux_session(self) -> MuxSession:
        """A mux session (proxy/mux) whose streams are HTTP/1.1 connections of this server."""
        connections = self.connections
        # twice what a client opens (proxy/mux/connector.py): a stream it reset may still be here
        session = MuxSession(new_stream=self.http1_stream, idle_timeout_s=self.limits.idle_timeout_s,
                             max_streams=2 * MAX_CLIENT_STREAMS, on_lost=connections.discard)
        connections.add(session)
        return session

    def abort(self) -> None:
        """Stop at once: no more connections, every HTTP connection cut, no sweep."""
        self.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        self.connections.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


class _Sniffer(asyncio.Protocol):
    """A connection whose protocol is not known yet."""

    def __init__(self, server: ProtocolServer) -> None:
        self.server = server
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buffer = b""
        self.deadline = math.inf
        self._detect_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        server = self.server
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            alpn = ssl_object.selected_alpn_protocol()
            if alpn == MUX_ALPN:
                return self._switch(server.mux_session())
            if alpn == "h2" and server.h2 is not None:
                return self._switch(server.h2(server.connections))
            if alpn == TCP_ALPN and server.tcp is not None:
                return self._switch(server.tcp(server.connections))
            if alpn == "http/1.1":
                return self._switch(server.http1())
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + server.limits.header_timeout_s
        if server.opaque is not None:
            self._detect_timer = loop.call_later(server.limits.detect_timeout_s, self._undecided)
        server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer = self.buffer + data
        server = self.server
        if server.opaque is not None:
            return self._detected(detect(buffer, server.limits.max_header_bytes))
        n = len(buffer)
        if server.h2 is not None and buffer[:24] == H2_PREFACE[:n]:
            if n >= len(H2_PREFACE):
                self._switch(server.h2(server.connections))
            return
        if server.tcp is not None and buffer[:len(TCP_MAGIC)] == TCP_MAGIC[:n]:
            if n >= len(TCP_MAGIC):
                self._switch(server.tcp(server.connections))
            return
        self._switch(server.http1())

    def _detected(self, found: str | None) -> None:
        server = self.server
        if found is None:
            return
        if found == H2 and server.h2 is not None:
            self._switch(server.h2(server.connections))
        elif found == HTTP1:
            self._switch(server.http1())
        else:
            self._switch(server.opaque())  # type: ignore[misc]

    def _undecided(self) -> None:
        self._detect_timer = None
        self._switch(self.server.opaque())  # type: ignore[misc]

    def _switch(self, protocol: asyncio.BaseProtocol) -> None:
        self.server.connections.discard(self)
        if self._detect_timer is not None:
            self._detect_timer.cancel()
            self._detect_timer = None
        transport = self.transport
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.buffer:
            protocol.data_received(self.buffer)  # type: ignore[attr-defined]
            self.buffer = b""

    def eof_received(self) -> bool:
        if self.server.opaque is not None:  # all the client will send: what it sent so far decides
            found = detect(self.buffer, self.server.limits.max_header_bytes)
            self._detected(OPAQUE if found is None else found)
            protocol = self.transport.get_protocol()
            if protocol is not self:
                return bool(protocol.eof_received())  # type: ignore[attr-defined]
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self._detect_timer is not None:
            self._detect_timer.cancel()
            self._detect_timer = None

    # the listener's interface (proxy/http1/server.py HttpServer)
    def expire(self) -> None:
        self.transport.close()

    def drain_and_close(self) -> None:
        self.transport.close()
