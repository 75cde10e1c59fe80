"""Flow control shared by the server and the upstream client.

Reading: a `BodyStream` holds the body bytes the parser delivered and not yet
consumed; above HIGH_WATER it asks its connection to stop reading the socket,
and below LOW_WATER to read again, so a body is never held whole in memory.
Writing: `WriteFlow` follows the transport's pause_writing/resume_writing so
a producer can wait until the peer has taken the bytes already written.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol

HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024


class ReadControl(Protocol):
    def body_backpressure(self, paused: bool) -> None: ...


class BodyStream:
    """Bytes of one message body, fed by parser callbacks, read by one consumer."""

    __slots__ = ("_ctrl", "_chunks", "_size", "_eof", "_error", "_waiter", "_paused", "discarding",
                 "read_started", "on_first_read")

    def __init__(self, ctrl: ReadControl) -> None:
        self._ctrl = ctrl
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.discarding = False  # nobody will read: drop what arrives
        self.read_started = False  # a consumer took bytes: they cannot be sent again
        self.on_first_read: Callable[[], None] | None = None  # once, before the first read (100-continue)

    @property
    def complete(self) -> bool:
        return self._eof

    def feed(self, data: bytes) -> None:
        if self.discarding:
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER and not self._paused:
            self._paused = True
            self._ctrl.body_backpressure(True)
        self._wake()

    def finish(self) -> None:
        self._eof = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        if not self._eof:
            self._error = exc
            self._wake()

    def discard(self) -> None:
        """Drop buffered and future bytes (the response is sent; the rest of the
        body only has to be read off the socket)."""
        self.discarding = True
        self._chunks.clear()
        self._size = 0
        if self._paused:
            self._paused = False
            self._ctrl.body_backpressure(False)

    async def read(self) -> bytes:
        """The next bytes of the body; b"" once it is complete."""
        if self.on_first_read is not None:
            cb, self.on_first_read = self.on_first_read, None
            cb()
        while True:
            if self._chunks:
                self.read_started = True
                chunks = self._chunks
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._size = 0
                if self._paused:
                    self._paused = False
                    self._ctrl.body_backpressure(False)
                return data
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def take_complete(self) -> bytes | None:
        """The whole body if it has all arrived (no waiting needed), else None."""
        if not self._eof or self.discarding:
            return None
        self.read_started = True
        self.on_first_read = None
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        if self._paused:
            self._paused = False
            self._ctrl.body_backpressure(False)
        return data

    async def read_all(self, limit: int) -> bytes:
        """The whole body, for small bodies only; ValueError past `limit` bytes."""
        parts = []
        size = 0
        while chunk := await self.read():
            size += len(chunk)
            if size > limit:
                raise ValueError(f"body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)


class WriteFlow:
    """Tracks pause_writing/resume_writing of one transport."""

    __slots__ = ("paused", "_waiter", "_lost")

    def __init__(self) -> None:
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._lost: BaseException | None = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def lost(self, exc: BaseException) -> None:
        self._lost = exc
        self.paused = False
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(exc)

    async def drain(self) -> None:
        if self._lost is not None:
            raise self._lost
        if not self.paused:
            return
        if self._waiter is None or self._waiter.done():
            self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter
