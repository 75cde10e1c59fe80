"""The server side of HTTP/2 connections (clients and other clusters' proxies calling us).

Each request stream is handed to `accept(conn, stream_id, headers, end_stream)`, which
answers or starts a relay and returns the `StreamHandler` of the stream's further events.
Connections join the listener's `connections` set (as HTTP/1.1 ones do), so the listener's
shutdown drains them: GOAWAY, then close once their streams are done.
"""
from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import ngh2

from proxy.http2.connection import H2Connection, Headers, StreamHandler
from proxy.http2.settings import LongLived

Accept = Callable[["H2ServerConnection", int, Headers, bool], StreamHandler]


class H2ServerConnection(H2Connection):
    role = ngh2.Role.SERVER
    deadline = math.inf  # the listener's sweep never expires it: its own timer does (connection.py)

    def __init__(self, accept: Accept, settings: LongLived, connections: set) -> None:
        super().__init__(settings, ping=True)
        self._accept = accept
        self._connections = connections
        self.peer_identity: object = None  # cached by the gateway: the TLS peer's identity

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connections.add(self)
        super().connection_made(transport)

    def lost(self) -> None:
        self._connections.discard(self)

    def _on_head(self, event: ngh2.RequestReceived | ngh2.ResponseReceived) -> None:
        sid = event.stream_id
        if sid in self.streams:
            return  # a second header block that is not trailers: the engine refuses those
        self.add_stream(sid, self._accept(self, sid, event.headers, event.end_stream))

    def respond(self, sid: int, headers: Headers, body: bytes = b"", *, end_stream: bool = True) -> None:
        """Answer a stream ourselves (errors, refusals)."""
        try:
            self.h2.send_response(sid, headers, end_stream=end_stream and not body)
            if body:
                self.h2.send_data(sid, body, end_stream=end_stream)
        except ngh2.NGH2Error:
            return
        self.mark()

    # the listener's interface (proxy/http1/server.py HttpServer)
    def expire(self) -> None:
        pass

    def drain_and_close(self) -> None:
        self.shutdown()


class _Done:
    """The handler of a stream answered at once: later events are dropped (and acknowledged)."""

    def __init__(self, conn: H2Connection, sid: int) -> None:
        self.conn = conn
        self.sid = sid

    def on_head(self, headers: Headers, end_stream: bool) -> None:
        pass

    def on_data(self, data: bytes, end_stream: bool) -> None:
        self.conn.ack(self.sid, len(data))

    def on_trailers(self, headers: Headers) -> None:
        pass

    def on_closed(self, error_code: int, reason: str) -> None:
        pass


def answered(conn: H2ServerConnection, sid: int) -> StreamHandler:
    return _Done(conn, sid)
