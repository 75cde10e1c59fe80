"""Connections before they are joined into a pipe: what they read meanwhile is kept (and
reading pauses past a bound), and an upstream connection is opened with the mesh's TLS."""
from __future__ import annotations

import asyncio
import ssl

from proxy.config import Endpoint
from proxy.dial import dial
from proxy.http1.client import ConnectFailed

HOLD_MAX = 64 * 1024


class Held(asyncio.Protocol):
    """Keeps the bytes a connection reads until someone takes the transport over."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buffer = bytearray()
        self.lost = False
        self.eof = False  # the peer has sent all it will
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HOLD_MAX:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return self.transport.can_write_eof()  # half-closed: the pipe may still send the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> bytes:
        data, self.buffer = bytes(self.buffer), bytearray()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        return data

    async def read_until(self, marker: bytes, limit: int) -> int:
        """Wait for `marker`; returns the index just past it. Raises ConnectionError when the
        connection ends first or `limit` bytes come without it."""
        while True:
            i = self.buffer.find(marker)
            if i >= 0:
                return i + len(marker)
            if len(self.buffer) > limit:
                raise ConnectionError(f"no {marker!r} within {limit} bytes")
            if self.lost or self.eof:
                raise ConnectionError("connection closed")
            self.transport.resume_reading()
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    async def fill(self, size: int) -> None:
        """Wait until `size` bytes are held or the connection has ended."""
        while len(self.buffer) < size and not (self.lost or self.eof):
            self.transport.resume_reading()
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter


async def connect(ep: Endpoint, ctx: ssl.SSLContext | None, server_name: str, timeout_s: float,
                  alpn: str = "") -> Held:
    """A connection to `ep` (TLS with `ctx`, checking `alpn` when given). Raises ConnectFailed."""
    _, held = await dial(Held, ep.host, ep.port, ctx=ctx, server_name=server_name, timeout_s=timeout_s, alpn=alpn,
                         error=ConnectFailed)
    return held
