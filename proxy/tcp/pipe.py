"""Two connections joined byte for byte (opaque TCP, upgraded WebSocket): what one side
sends the other receives, with flow control (a side whose peer cannot keep up stops being
read), byte counts, an idle timeout, and TCP keepalive on both
sockets so that a quiet but healthy connection is not taken for dead by the network.

A half-close (EOF) is passed on where the transport can send one (plain TCP); a TLS hop
cannot, so there it is held until one side closes.

`Pipe.join(a, b)` takes over two transports whose protocol may be anything (it sets its own)."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable


def keepalive(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        except OSError:
            pass


class _End(asyncio.Protocol):
    """One side of the pipe."""

    def __init__(self, pipe: Pipe, name: str) -> None:
        self.pipe = pipe
        self.name = name
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.peer: _End = None  # type: ignore[assignment]
        self.received = 0
        self.eof = False
        self.closed = False

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.pipe.active = True
        peer = self.peer
        if not peer.closed:
            peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer.eof:  # both ways done
            return False
        if not peer.closed and peer.transport.can_write_eof():
            peer.transport.write_eof()
        # else (TLS) the half-close cannot be passed on: it is held until a side closes
        return self.transport.can_write_eof()  # keep our side open for the answer; TLS closes anyway

    def pause_writing(self) -> None:
        if not self.peer.closed:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.peer.closed:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None and not self.pipe.error:
            self.pipe.error = f"{self.name}: {exc}"
        if not self.peer.closed:
            self.peer.transport.close()
        self.pipe._side_closed()


class Pipe:
    """`on_close(pipe)` is called once, when both sides are closed; `a_bytes` / `b_bytes`:
    bytes read from each side."""

    def __init__(self, idle_timeout_s: float = 0.0, on_close: Callable[[Pipe], None] | None = None) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.on_close = on_close
        self.a = _End(self, "client")
        self.b = _End(self, "upstream")
        self.a.peer, self.b.peer = self.b, self.a
        self.active = False
        self.error = ""
        self._timer: asyncio.TimerHandle | None = None
        self._done = False

    @property
    def a_bytes(self) -> int:
        return self.a.received

    @property
    def b_bytes(self) -> int:
        return self.b.received

    def join(self, a: asyncio.Transport, b: asyncio.Transport, *, to_a: bytes = b"", to_b: bytes = b"") -> None:
        """Take over `a` and `b`; `to_a` / `to_b`: bytes already read from the other side."""
        for end, transport in ((self.a, a), (self.b, b)):
            end.transport = transport
            transport.set_protocol(end)
            keepalive(transport)
        if to_a:
            a.write(to_a)
        if to_b:
            b.write(to_b)
        if self.idle_timeout_s > 0:
            self._timer = asyncio.get_running_loop().call_later(self.idle_timeout_s, self._check_idle)

    def close(self) -> None:
        for end in (self.a, self.b):
            if not end.closed and end.transport is not None:
                end.transport.close()

    def _check_idle(self) -> None:
        if self._done:
            return
        if not self.active:
            self.error = f"idle for {self.idle_timeout_s:g} s"
            self.close()
            return
        self.active = False
        self._timer = asyncio.get_running_loop().call_later(self.idle_timeout_s, self._check_idle)

    def _side_closed(self) -> None:
        if self._done or not (self.a.closed and self.b.closed):
            return
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
        if self.on_close is not None:
            self.on_close(self)
