"""Two connections joined byte for byte (opaque TCP, upgraded WebSocket): what one side
sends the other receives, with flow control (a side whose peer cannot keep up stops being
read), byte counts, an idle timeout, and TCP keepalive on both
sockets so that a quiet but healthy connection is not taken for dead by the network.

A half-close (EOF) is passed on where the transport can send one (plain TCP). A TLS hop
cannot (asyncio's TLS has no half-close), so the mesh's own hop between an outbound proxy
and a gateway (MESHTUI-TCP) is *framed*: each chunk goes as a 4-byte big-endian length
and its bytes, and a zero length says "EOF", so a client's half-close reaches the server
across clusters, and a client that closed its connection lets the whole chain close
(`framed` ends; proxy/tcp/forward.py and gateway.py). Elsewhere a half-close that cannot be
passed on is held until one side closes.

`Pipe.join(a, b)` takes over two transports whose protocol may be anything (it sets its own)."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

_EOF_FRAME = b"\x00\x00\x00\x00"


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
        self.framed = False
        self.received = 0  # bytes of payload read from this side
        self.eof = False
        self.closed = False
        self._head = b""  # a framed side's frame header, while incomplete
        self._left = 0  # payload bytes still to come in the current frame

    def send(self, data: bytes | memoryview) -> None:
        """Write `data` (payload) to this side."""
        if self.closed or not data:  # (an empty frame would say EOF)
            return
        if self.framed:
            self.transport.write(len(data).to_bytes(4, "big") + data)  # one write: one TLS record
        else:
            self.transport.write(data)

    def send_eof(self) -> None:
        if self.closed:
            return
        if self.framed:
            self.transport.write(_EOF_FRAME)
        elif self.transport.can_write_eof():
            self.transport.write_eof()
        # else (TLS, not framed) the half-close cannot be passed on: held until a side closes

    def data_received(self, data: bytes) -> None:
        self.pipe.active = True
        if self.framed:
            return self._unframe(data)
        self.received += len(data)
        self.peer.send(data)

    def _unframe(self, data: bytes) -> None:
        # payload is passed on as it comes (never buffered): only a header may straddle reads
        view = memoryview(data)
        at, size = 0, len(data)
        while at < size:
            left = self._left
            if left:
                take = min(left, size - at)
                self.received += take
                self.peer.send(view[at:at + take])
                self._left = left - take
                at += take
                continue
            head = self._head + bytes(view[at:at + 4 - len(self._head)])
            at += len(head) - len(self._head)
            if len(head) < 4:
                self._head = head
                return
            self._head = b""
            self._left = int.from_bytes(head, "big")
            if not self._left:
                return self._peer_eof()

    def _peer_eof(self) -> None:
        """The far side of a framed hop sent all it will."""
        self.eof = True
        self.peer.send_eof()
        if self.peer.eof:  # both ways done
            self.transport.close()

    def eof_received(self) -> bool:
        if self.framed:  # the hop itself ends: nothing more either way
            return False
        self.eof = True
        peer = self.peer
        peer.send_eof()
        if peer.eof:  # both ways done
            return False
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
    bytes (payload) read from each side."""

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

    def join(self, a: asyncio.Transport, b: asyncio.Transport, *, to_a: bytes = b"", to_b: bytes = b"",
             held_a: bytes = b"", held_b: bytes = b"", framed_a: bool = False, framed_b: bool = False) -> None:
        """Take over `a` and `b`. `to_a` / `to_b`: bytes written to that side first, as they
        are; `held_a` / `held_b`: bytes already read from that side, passed on (and counted)
        as if read now; `framed_*`: that side is a framed mesh hop."""
        for end, transport, framed in ((self.a, a, framed_a), (self.b, b, framed_b)):
            end.transport = transport
            end.framed = framed
            transport.set_protocol(end)
            keepalive(transport)
        if to_a:
            a.write(to_a)
        if to_b:
            b.write(to_b)
        if held_a:
            self.a.data_received(held_a)
        if held_b:
            self.b.data_received(held_b)
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
