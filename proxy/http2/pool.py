"""Upstream HTTP/2 connections, pooled per (host, port, TLS context, server name) and shared:
every stream to one upstream rides the same connection, a second one is opened only when
the first is full (its peer's MAX_CONCURRENT_STREAMS) or going away. Concurrent requests
for a key with no connection wait for one connect."""
from __future__ import annotations

import asyncio
import ssl

from proxy.config import Endpoint
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
        loop = asyncio.get_running_loop()
        try:
            transport, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: H2ClientConnection(key, self.settings, ping=ep.gateway, on_lost=self._lost),
                    ep.host, ep.port, ssl=ctx,
                    server_hostname=(server_name or ep.host) if ctx is not None else None),
                self.connect_timeout_s)
        except asyncio.TimeoutError:
            raise ConnectFailed(f"connect to {ep.address} timed out after {self.connect_timeout_s:g} s") from None
        except ssl.SSLError as exc:
            raise ConnectFailed(f"TLS handshake with {ep.address} failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise ConnectFailed(f"connect to {ep.address} failed: {exc.strerror or exc}") from None
        if ctx is not None:
            alpn = transport.get_extra_info("ssl_object").selected_alpn_protocol()
            if alpn != "h2":
                transport.abort()
                raise ConnectFailed(f"{ep.address} did not agree to HTTP/2 over TLS (ALPN {alpn or 'none'})")
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
