"""The client side: mux sessions to remote gateways, one per (address, TLS identity), and
new streams on them for the upstream connection pool.

The first stream to a key dials the session (the streams asked for meanwhile wait for that
same dial); a session that is full, going away or closed is replaced by a new one, while
its streams finish where they are.
"""
from __future__ import annotations

import asyncio
import ssl
from typing import TypeVar

from proxy.dial import dial
from proxy.mux import MUX_ALPN
from proxy.mux.session import MuxSession

P = TypeVar("P", bound=asyncio.BaseProtocol)


MAX_CLIENT_STREAMS = 1024  # streams a session carries before the next one is dialled


class DialFailed(ConnectionError):
    """The session could not be set up; the message says why, naming the address."""


class MuxConnector:
    def __init__(self, *, connect_timeout_s: float = 2.0, idle_timeout_s: float = 60.0,
                 max_streams: int = MAX_CLIENT_STREAMS, keepalive_s: float = 30.0, keepalive_timeout_s: float = 10.0) -> None:
        """`keepalive_s`, `keepalive_timeout_s`: see MuxSession (a gateway that stops answering,
        its host gone, ends the session in bounded time, its streams' requests retried)."""
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.keepalive_s = keepalive_s
        self.keepalive_timeout_s = keepalive_timeout_s
        self.max_streams = max_streams
        self._sessions: dict[tuple, MuxSession] = {}
        self._dialing: dict[tuple, asyncio.Future[MuxSession]] = {}
        self.dialed = 0  # sessions ever set up (for tests and stats)

    async def open(self, key: tuple, host: str, port: int, ctx: ssl.SSLContext, server_name: str,
                   protocol: P) -> P:
        """`protocol` connected over a new stream of the session of `key` (dialled to
        host:port with `ctx` when there is none). Raises DialFailed."""
        session = self._sessions.get(key)
        for _ in range(2):  # the session we joined the dial of may be full by the time we wake
            if session is not None and session.can_open:
                session.open_stream(protocol)
                return protocol
            dialing = self._dialing.get(key)
            if dialing is None:
                dialing = self._dialing[key] = asyncio.ensure_future(self._dial(key, host, port, ctx, server_name))
                dialing.add_done_callback(lambda done: self._dialed(key, done))
            session = await asyncio.shield(dialing)
        raise DialFailed(f"no mux session to {host}:{port} can take another stream")

    def sessions(self) -> list[MuxSession]:
        return list(self._sessions.values())

    def close(self) -> None:
        for dialing in self._dialing.values():
            dialing.cancel()
        for session in list(self._sessions.values()):
            session.go_away()
        self._sessions.clear()

    async def _dial(self, key: tuple, host: str, port: int, ctx: ssl.SSLContext, server_name: str) -> MuxSession:
        _, session = await dial(
            lambda: MuxSession(idle_timeout_s=self.idle_timeout_s, max_streams=self.max_streams,
                               keepalive_s=self.keepalive_s, keepalive_timeout_s=self.keepalive_timeout_s,
                               on_lost=lambda lost: self._lost(key, lost)),
            host, port, ctx=ctx, server_name=server_name, timeout_s=self.connect_timeout_s, alpn=MUX_ALPN,
            error=DialFailed)
        self.dialed += 1
        return session

    def _dialed(self, key: tuple, done: asyncio.Future[MuxSession]) -> None:
        if self._dialing.get(key) is done:
            del self._dialing[key]
        if done.cancelled():
            return
        if done.exception() is None:
            session = done.result()
            if not session.closed:
                old = self._sessions.get(key)
                self._sessions[key] = session
                if old is not None and not old.closed:
                    old.go_away()  # full: it ends with its last stream

    def _lost(self, key: tuple, session: MuxSession) -> None:
        if self._sessions.get(key) is session:
            del self._sessions[key]
