"""One listener for every protocol a connection may speak: HTTP/1.1 (the default), HTTP/2
and, on a gateway, an opaque TCP stream for one export.

The choice is made once per connection: by TLS ALPN when the handshake agreed on a
protocol (`h2`, `meshtui-tcp`, `http/1.1`), else by its first bytes: the HTTP/2 client
preface (prior knowledge h2c), the MESHTUI-TCP preamble (proxy/tcp/preamble.py), anything
else is HTTP/1.1. The connection is then handed to that protocol's handler with the bytes
read so far. Connections of every protocol are in the server's `connections`, so its
shutdown drains them all.
"""
from __future__ import annotations

import asyncio
import math
from collections.abc import Callable


from proxy.http1.server import HttpServer, HttpServerProtocol
from proxy.tcp.preamble import MAGIC as TCP_MAGIC

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TCP_ALPN = "meshtui-tcp"

# makes the protocol of a connection; gets the server's `connections` set to join
ProtocolFactory = Callable[[set], asyncio.Protocol]


class ProtocolServer(HttpServer):
    """An HttpServer (same handler, limits, shutdown) whose connections may also speak
    HTTP/2 (`h2`) or carry opaque TCP (`tcp`)."""

    def __init__(self, handler, *, limits=None, ssl_context=None, h2: ProtocolFactory | None = None,
                 tcp: ProtocolFactory | None = None) -> None:
        super().__init__(handler, limits=limits, ssl_context=ssl_context)
        self.h2 = h2
        self.tcp = tcp

    def protocol(self) -> asyncio.Protocol:
        return _Sniffer(self)  # picks HTTP/1.1, HTTP/2 or TCP per connection

    def http1(self) -> asyncio.Protocol:
        return HttpServerProtocol(self.handler, self.limits, self.connections)


class _Sniffer(asyncio.Protocol):
    """A connection whose protocol is not known yet."""

    def __init__(self, server: ProtocolServer) -> None:
        self.server = server
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buffer = b""
        self.deadline = math.inf

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        server = self.server
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            alpn = ssl_object.selected_alpn_protocol()
            if alpn == "h2" and server.h2 is not None:
                return self._switch(server.h2(server.connections))
            if alpn == TCP_ALPN and server.tcp is not None:
                return self._switch(server.tcp(server.connections))
            if alpn == "http/1.1":
                return self._switch(server.http1())
        self.deadline = asyncio.get_running_loop().time() + server.limits.header_timeout_s
        server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer = self.buffer + data
        server = self.server
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

    def _switch(self, protocol: asyncio.Protocol) -> None:
        self.server.connections.discard(self)
        transport = self.transport
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.buffer:
            protocol.data_received(self.buffer)
            self.buffer = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    # the listener's interface (proxy/http1/server.py HttpServer)
    def expire(self) -> None:
        self.transport.close()

    def drain_and_close(self) -> None:
        self.transport.close()
