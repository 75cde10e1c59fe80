"""One stream of a mux session, as an asyncio transport: the protocol on it (an HTTP/1.1
server or upstream connection) cannot tell it from a TCP connection.

Flow control as yamux has it: a side may send at most the window its peer granted
(256 KiB to start); the receiver grants more as its protocol consumes, and stops granting
while the protocol paused reading, so a slow reader holds at most one window in memory.
Writes beyond the send window wait in the stream, and above HIGH_WATER the protocol is told
to pause writing; it is also paused while the session's own connection is.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from proxy.mux import frames
from proxy.mux.frames import ACK, FIN, INITIAL_WINDOW, RST, SYN

if TYPE_CHECKING:
    from proxy.mux.session import MuxSession

HIGH_WATER = 64 * 1024
_GRANT_AT = INITIAL_WINDOW // 2  # consumed bytes that earn the peer a window update


class StreamReset(ConnectionResetError):
    pass


class MuxStream(asyncio.Transport):
    __slots__ = ("session", "id", "_protocol", "_send_window", "_recv_window", "_consumed", "_pending",
                 "_open_flags", "_fin_sent", "_fin_queued", "_remote_fin", "_closing", "_done",
                 "_read_paused", "_inbox", "_write_paused", "_session_paused", "_delivering")

    def __init__(self, session: MuxSession, stream_id: int, protocol: asyncio.BaseProtocol, *,
                 opened_by_peer: bool) -> None:
        super().__init__()
        self.session = session
        self.id = stream_id
        self._protocol: Any = protocol
        self._send_window = INITIAL_WINDOW
        self._recv_window = INITIAL_WINDOW
        self._consumed = 0  # delivered to the protocol since the last window update
        self._pending = bytearray()  # written, waiting for send window
        self._open_flags = ACK if opened_by_peer else SYN  # carried by the first frame sent
        self._fin_sent = False
        self._fin_queued = False  # FIN after the pending bytes
        self._remote_fin = False
        self._closing = False  # close() or abort() called, or the stream was reset
        self._done = False  # connection_lost delivered (or scheduled)
        self._read_paused = False
        self._inbox: deque[bytes | None] = deque()  # received while paused; None = the peer's FIN
        self._write_paused = False  # the protocol was told pause_writing
        self._session_paused = session.write_paused
        self._delivering = False

    # -- asyncio.Transport ---------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":  # a stream has none of its own (SO_LINGER on the session's would hit every stream)
            return default
        return self.session.extra(name, default)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def is_closing(self) -> bool:
        """Also once the peer said its session goes away: it takes no new request then."""
        session = self.session
        return self._closing or session.closed or session.peer_going_away

    def is_reading(self) -> bool:
        return not self._read_paused

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._fin_queued or not data:
            return
        if self._pending or len(data) > self._send_window:
            self._pending += data
            self._flush_pending()
            self._update_write_pause()
            return
        self._send_window -= len(data)
        # a view may be of a read buffer that the next read overwrites before the session flushes
        self.session.send(frames.data_frame(self.id, self._take_open_flags(), bytes(data)))

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._fin_queued or self._closing:
            return
        self._fin_queued = True
        if not self._pending:
            self._send_fin()

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return 0, HIGH_WATER

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Fixed at HIGH_WATER (the send window bounds what a stream holds anyway)."""

    def pause_reading(self) -> None:
        self._read_paused = True

    def resume_reading(self) -> None:
        if self._read_paused:
            self._read_paused = False
            if self._inbox:
                self.session.loop.call_soon(self._deliver_inbox)
            else:
                self._grant()

    def close(self) -> None:
        """No more writes (a FIN once the pending bytes are sent); the protocol hears
        connection_lost; what the peer still sends is dropped."""
        if self._closing:
            return
        self.write_eof()
        self._closing = True
        self._inbox.clear()
        self._lost(None)
        if self._remote_fin and self._fin_sent:
            self.session.forget(self)

    def abort(self) -> None:
        """Reset the stream (RST): the peer's protocol hears a reset, this one connection_lost."""
        if self._closing and self._remote_fin and self._fin_sent:
            return
        self._pending.clear()
        if not (self._remote_fin and self._fin_sent) and not self._open_flags & SYN:  # the peer knows it
            self.session.send(frames.window_update(self.id, self._take_open_flags() | RST, 0))
        self._closing = self._fin_sent = True
        self._inbox.clear()
        self._lost(None)
        self.session.forget(self)

    # -- from the session ---------------------------------------------------------------

    def received(self, flags: int, chunk: memoryview) -> None:
        """Payload (and flags) of a Data frame for this stream."""
        if flags & RST:
            return self.reset()
        n = len(chunk)
        if n:
            self._recv_window -= n
            if self._recv_window < 0:
                self.session.send(frames.window_update(self.id, RST, 0))
                return self.reset(f"peer sent {-self._recv_window} bytes beyond the stream's window")
            if self._closing:
                return
            if self._read_paused or self._inbox:
                self._inbox.append(bytes(chunk))
            else:
                try:
                    self._protocol.data_received(chunk)
                except Exception as exc:  # one stream's failure must not end its session's others
                    return self._failed(exc, "data_received")
                self._consumed += n
                if self._consumed >= _GRANT_AT and not self._read_paused:
                    self._grant()
        if flags & FIN:
            self._remote_finished()

    def window_update(self, flags: int, delta: int) -> None:
        if flags & RST:
            return self.reset()
        if delta:
            self._send_window += delta
            if self._pending:
                self._flush_pending()
                self._update_write_pause()
        if flags & FIN:
            self._remote_finished()

    def reset(self, why: str = "") -> None:
        """The peer reset the stream (or broke its window): the protocol hears a reset."""
        if self._done:
            self.session.forget(self)
            return
        self._closing = self._fin_sent = self._remote_fin = True
        self._pending.clear()
        self._inbox.clear()
        self._lost(StreamReset(why or "stream reset by the peer"))
        self.session.forget(self)

    def session_lost(self, exc: Exception) -> None:
        self._closing = True
        self._pending.clear()
        self._inbox.clear()
        self._lost(exc)

    def session_paused(self, paused: bool) -> None:
        self._session_paused = paused
        self._update_write_pause()

    # -- inside ---------------------------------------------------------------------------

    def _take_open_flags(self) -> int:
        flags, self._open_flags = self._open_flags, 0
        return flags

    def _flush_pending(self) -> None:
        window = self._send_window
        if window <= 0:
            return
        pending = self._pending
        chunk = bytes(pending[:window])
        del pending[:len(chunk)]
        self._send_window -= len(chunk)
        self.session.send(frames.data_frame(self.id, self._take_open_flags(), chunk))
        if not pending and self._fin_queued and not self._fin_sent:
            self._send_fin()

    def _send_fin(self) -> None:
        self._fin_sent = True
        if self._open_flags & SYN:  # never sent a byte: the peer never heard of it
            self._remote_fin = True
            self.session.forget(self)
            return
        self.session.send(frames.window_update(self.id, self._take_open_flags() | FIN, 0))
        if self._remote_fin and self._closing:
            self.session.forget(self)

    def _update_write_pause(self) -> None:
        paused = self._session_paused or len(self._pending) > HIGH_WATER
        if paused != self._write_paused and not self._done:
            self._write_paused = paused
            if paused:
                self._protocol.pause_writing()
            else:
                self._protocol.resume_writing()

    def _grant(self) -> None:
        consumed, self._consumed = self._consumed, 0
        if consumed and not self._closing:
            self._recv_window += consumed
            self.session.send(frames.window_update(self.id, self._take_open_flags(), consumed))

    def _deliver_inbox(self) -> None:
        inbox = self._inbox
        while inbox and not self._read_paused and not self._closing:
            chunk = inbox.popleft()
            if chunk is None:
                self._eof()
                continue
            try:
                self._protocol.data_received(chunk)
            except Exception as exc:
                return self._failed(exc, "data_received")
            self._consumed += len(chunk)
        if not self._read_paused:
            self._grant()

    def _remote_finished(self) -> None:
        if self._closing:
            self._remote_fin = True
            if self._fin_sent:
                self.session.forget(self)
        elif self._read_paused or self._inbox:
            self._inbox.append(None)
        else:
            self._eof()

    def _eof(self) -> None:
        self._remote_fin = True
        try:
            keep_open = self._protocol.eof_received()
        except Exception as exc:
            return self._failed(exc, "eof_received")
        if not keep_open:
            self.close()

    def _failed(self, exc: Exception, call: str) -> None:
        self.session.loop.call_exception_handler({
            "message": f"mux stream {self.id}: protocol.{call}() failed; the stream is reset",
            "exception": exc, "transport": self, "protocol": self._protocol})
        self.abort()

    def _lost(self, exc: Exception | None) -> None:
        if not self._done:
            self._done = True
            self.session.loop.call_soon(self._protocol.connection_lost, exc)
