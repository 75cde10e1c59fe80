"""Flow control shared by the server and the upstream client.

Reading: a `BodyStream` holds the body bytes the parser delivered and not yet
consumed; above HIGH_WATER it asks its connection to stop reading the socket,
so a body is never held whole in memory. Instead of being read, a body may be
piped to a `BodySink` (the proxy's upstream connection): bytes pass through as
they arrive, and the sink holds the reading back while its own peer is slow.
Writing: `WriteFlow` follows the transport's pause_writing/resume_writing so
a producer can wait (or be called back) until the peer has taken the bytes
already written.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

HIGH_WATER: Final = 64 * 1024


class ReadControl(Protocol):
    def body_backpressure(self, paused: bool) -> None: ...


class BodySink(Protocol):
    def body_data(self, data: bytes) -> None: ...

    def body_end(self) -> None: ...

    def body_failed(self, exc: BaseException) -> None: ...


class BodyStream:
    """Bytes of one message body, fed by parser callbacks, read by one consumer."""

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
        self._sink: BodySink | None = None

    @property
    def complete(self) -> bool:
        return self._eof

    def feed(self, data: bytes) -> None:
        if self.discarding:
            return
        if self._sink is not None:
            self.read_started = True
            self._sink.body_data(data)
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER and not self._paused:
            self._paused = True
            self._ctrl.body_backpressure(True)
        self._wake()

    def finish(self) -> None:
        self._eof = True
        if self._sink is not None:
            self._sink.body_end()
        self._wake()

    def fail(self, exc: BaseException) -> None:
        if not self._eof:
            self._error = exc
            if self._sink is not None:
                self._sink.body_failed(exc)
            self._wake()

    def pipe(self, sink: BodySink) -> None:
        """Pass the body to `sink` from now on: what is buffered at once, the rest as it
        arrives, then `body_end` (or `body_failed`). Counts as reading (100-continue)."""
        if self.on_first_read is not None:
            cb, self.on_first_read = self.on_first_read, None
            cb()
        self._sink = sink
        if self._chunks:
            self.read_started = True
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._size = 0
            sink.body_data(data)
        self.hold(False)
        if self._error is not None:
            sink.body_failed(self._error)
        elif self._eof:
            sink.body_end()

    def unpipe(self) -> None:
        """The sink leaves; what arrives later is buffered (or discarded) again."""
        self._sink = None
        self.hold(False)

    def hold(self, paused: bool) -> None:
        """The sink's peer is slow (True) or has caught up: stop or resume reading."""
        if paused != self._paused:
            self._paused = paused
            self._ctrl.body_backpressure(paused)

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


class EmptyBody:
    """The body of a request that has none: complete, nothing to read. Stateless, so one
    instance (`NO_BODY`) serves every such request without a `BodyStream` each."""

    complete = True
    read_started = False
    discarding = False
    on_first_read = None

    async def read(self) -> bytes:
        return b""

    async def read_all(self, limit: int) -> bytes:
        return b""

    def take_complete(self) -> bytes:
        return b""

    def discard(self) -> None:
        pass

    def pipe(self, sink: BodySink) -> None:
        sink.body_end()

    def unpipe(self) -> None:
        pass

    def hold(self, paused: bool) -> None:
        pass


NO_BODY: Final = EmptyBody()


class WriteFlow:
    """Tracks pause_writing/resume_writing of one transport."""

    def __init__(self) -> None:
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._lost: BaseException | None = None
        self.on_resume: Callable[[], None] | None = None  # once, at the next resume (callback producers)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        cb = self.on_resume
        if cb is not None:
            self.on_resume = None
            cb()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def lost(self, exc: BaseException) -> None:
        self._lost = exc
        self.paused = False
        self.on_resume = None
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
