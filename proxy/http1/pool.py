"""Upstream connection pools: idle keep-alive connections per (address, TLS identity).
Over mTLS to a gateway a connection is a stream of the one mux session to that gateway
with that identity (proxy/mux).

`tls_for(endpoint)` says how to reach an endpoint: `(None, _)` for plain TCP,
or an `ssl.SSLContext` (the client identity for mTLS) and the server name to
verify. A context is part of the pool key, so a rotated certificate (a new
context) gets fresh connections while the old ones age out.
"""
from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from proxy.config import Endpoint, Limits
from proxy.dial import dial
from proxy.http1.client import ConnectFailed, TlsUpstreamConnection, UpstreamConnection
from proxy.mux.connector import DialFailed, MuxConnector
from proxy.tls.tls import MuxClientContext

TlsFor = Callable[[Endpoint], tuple[ssl.SSLContext | None, str]]
# (host, port, TLS context or None, server name): the connections of one key are interchangeable
PoolKey = tuple[str, int, ssl.SSLContext | None, str]


def plain(_: Endpoint) -> tuple[ssl.SSLContext | None, str]:
    return None, ""


class Pools:
    def __init__(self, limits: Limits | None = None, tls_for: TlsFor = plain) -> None:
        self.limits = limits or Limits()
        self.tls_for = tls_for
        self._idle: dict[PoolKey, list[UpstreamConnection]] = {}
        self.opened = 0  # connections ever opened (for tests and stats)
        self.mux = MuxConnector(connect_timeout_s=self.limits.connect_timeout_s,
                                idle_timeout_s=self.limits.idle_timeout_s)
        self._sweeper: asyncio.TimerHandle | None = None

    def key(self, ep: Endpoint) -> PoolKey:
        """How to reach `ep` now (`tls_for` may depend on the request: call it in the request's context)."""
        ctx, server_name = self.tls_for(ep)
        return ep.host, ep.port, ctx, server_name

    def idle(self, key: PoolKey) -> UpstreamConnection | None:
        """An idle connection of `key`, or None."""
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.transport.is_closing():
                conn.reused = True
                return conn
        return None

    async def connect(self, ep: Endpoint, key: PoolKey) -> UpstreamConnection:
        """A new connection to `ep` as `key` says (a stream of a mux session for a
        MuxClientContext). Raises ConnectFailed."""
        ctx, server_name = key[2], key[3]
        if isinstance(ctx, MuxClientContext):
            try:
                conn = await self.mux.open(key, ep.host, ep.port, ctx, server_name,
                                           UpstreamConnection(key, self._lost))
            except DialFailed as exc:
                raise ConnectFailed(str(exc)) from None
            self.opened += 1
            return conn
        protocol = UpstreamConnection if ctx is None else TlsUpstreamConnection
        _, conn = await dial(lambda: protocol(key, self._lost), ep.host, ep.port, ctx=ctx, server_name=server_name,
                             timeout_s=self.limits.connect_timeout_s, error=ConnectFailed)
        self.opened += 1
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Back to the pool if it can carry another exchange, else closed."""
        if not conn.reusable:
            conn.close()
            return
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
        if len(idle) >= self.limits.pool_max_idle_per_endpoint:
            conn.close()
            return
        loop = conn.loop
        conn.idle_since = loop.time()
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._tick_s, self._sweep)

    @property
    def _tick_s(self) -> float:
        return min(5.0, max(0.02, self.limits.idle_timeout_s / 4))

    def _sweep(self) -> None:
        """Close connections idle for longer than the idle timeout (at most a tick late)."""
        loop = asyncio.get_running_loop()
        oldest = loop.time() - self.limits.idle_timeout_s
        for key, idle in list(self._idle.items()):
            # most recently used last: the stale ones are at the front
            while idle and idle[0].idle_since <= oldest:
                idle.pop(0).close()
            if not idle:
                del self._idle[key]
        self._sweeper = loop.call_later(self._tick_s, self._sweep) if self._idle else None

    def _lost(self, conn: UpstreamConnection) -> None:
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)
            if not idle:
                del self._idle[conn.key]

    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in list(self._idle.values()):
            for conn in list(idle):
                conn.close()
        self._idle.clear()
        self.mux.close()
