"""Upstream HTTP/2 connections, pooled per (host, port, TLS context, server name) and shared:
every stream to one upstream rides the same connection, a second one is opened only when
the first is full (its peer's MAX_CONCURRENT_STREAMS) or going away. Concurrent requests
for a key with no connection wait for one connect."""
from __future__ import annotations

import asyncio
import ssl

from proxy.config import Endpoint
from proxy.dial import dial
from proxy.http1.client import ConnectFailed
from proxy.http2.client import H2ClientConnection
from proxy.http2.settings import LongLived

# (host, port, TLS context or None, server name), as proxy.http1.pool.PoolKey
H2Key = tuple[str, int, ssl.SSLContext | None, str]


class H2Pools:
    def __init__(self, settings: LongLived, connect_timeout_s: float = 2.0) -> None:
        self.settings = settings
        self.connect_timeout_s = connect_timeout_s
        self._conns: dict[H2Key, list[H2ClientConnection]] = {}
        self._connecting: dict[H2Key, asyncio.Future[H2ClientConnection]] = {}
        self.opened = 0

    def ready(self, key: H2Key) -> H2ClientConnection | None:
        for conn in self._conns.get(key, ()):
            if conn.available:
                return conn
        return None

    async def connect(self, ep: Endpoint, key: H2Key) -> H2ClientConnection:
        """A connection of `key` with room for a stream. Raises ConnectFailed."""
        pending = self._connecting.get(key)
        if pending is None:
            pending = self._connecting[key] = asyncio.ensure_future(self._open(ep, key))
            pending.add_done_callback(lambda _, key=key: self._connecting.pop(key, None))
        conn = await asyncio.shield(pending)
        if conn.available:
            return conn
        return self.ready(key) or await self._open(ep, key)

    async def _open(self, ep: Endpoint, key: H2Key) -> H2ClientConnection:
        ctx, server_name = key[2], key[3]
        _, conn = await dial(lambda: H2ClientConnection(key, self.settings, ping=ep.gateway, on_lost=self._lost),
                             ep.host, ep.port, ctx=ctx, server_name=server_name, timeout_s=self.connect_timeout_s,
                             alpn="h2", error=ConnectFailed)
        self.opened += 1
        self._conns.setdefault(key, []).append(conn)
        return conn

    def _lost(self, conn: H2ClientConnection) -> None:
        conns = self._conns.get(conn.key)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._conns[conn.key]

    def connections(self) -> int:
        return sum(len(v) for v in self._conns.values())

    def close(self) -> None:
        for conns in list(self._conns.values()):
            for conn in list(conns):
                conn.shutdown()
                conn.close()
        self._conns.clear()
