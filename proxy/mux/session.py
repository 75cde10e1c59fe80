"""A mux session: one TLS connection between two proxies carrying many streams.

The client side opens streams (odd ids); the server side takes each new stream as a
connection of its own and hands it to a protocol made for it. Frames written by any
stream during one turn of the event loop leave in one write, so one TLS record carries
the requests (or answers) of many streams: that is what makes mTLS between proxies cost
little more than plain TCP.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from proxy.readinto import ReadInto
from proxy.mux import frames
from proxy.mux.frames import ACK, RST, SYN, FrameReader, MuxProtocolError
from proxy.mux.stream import MuxStream

_NEVER = float("inf")


class SessionClosed(ConnectionResetError):
    pass


class MuxSession(ReadInto):
    """`new_stream`: on the server side, makes the protocol of a stream the peer opens
    (None on the client side, which opens streams with `open_stream`). `keepalive_s`: ping
    a peer that has sent nothing for this long, and end the session (its streams hear why)
    when nothing comes back within `keepalive_timeout_s` (0: never ping)."""

    def __init__(self, *, new_stream: Callable[[], asyncio.BaseProtocol] | None = None,
                 max_streams: int = 1024, idle_timeout_s: float = 60.0, keepalive_s: float = 0.0,
                 keepalive_timeout_s: float = 10.0, on_lost: Callable[[MuxSession], None] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.streams: dict[int, MuxStream] = {}
        self.closed = False
        self.going_away = False  # we open or take no new streams: the session ends with its last one
        self.peer_going_away = False  # the peer said Go Away: it takes no new streams
        self.write_paused = False
        self.max_streams = max_streams
        self.idle_timeout_s = idle_timeout_s
        self.error = ""  # why the session ended, when it broke
        self._new_stream = new_stream
        self._on_lost = on_lost
        self._next_id = 1 if new_stream is None else 2
        self._reader = FrameReader(self)
        self._out: list[bytes] = []
        self._flush: asyncio.Handle | None = None
        self._extra: dict[str, Any] = {}
        self._idle_timer: asyncio.TimerHandle | None = None
        self.keepalive_s = keepalive_s
        self.keepalive_timeout_s = keepalive_timeout_s
        self._heard = self.loop.time()  # when the peer last sent anything
        self._pinged = 0.0  # when the unanswered ping went out (0: none)
        self._keepalive: asyncio.TimerHandle | None = None

    # -- streams --------------------------------------------------------------------------

    @property
    def can_open(self) -> bool:
        return not self.closed and not self.going_away and not self.peer_going_away \
            and len(self.streams) < self.max_streams and self._next_id <= frames.MAX_STREAM_ID

    def open_stream(self, protocol: asyncio.BaseProtocol) -> MuxStream:
        """A new stream for `protocol` (client side; check `can_open` first). The peer
        hears of it with the stream's first bytes."""
        stream_id = self._next_id
        self._next_id += 2
        stream = self.streams[stream_id] = MuxStream(self, stream_id, protocol, opened_by_peer=False)
        self._busy()
        protocol.connection_made(stream)
        return stream

    def forget(self, stream: MuxStream) -> None:
        if self.streams.get(stream.id) is stream:
            del self.streams[stream.id]
            if not self.streams:
                self._idle()

    def extra(self, name: str, default: Any = None) -> Any:
        """The connection's extra info (peer certificate, addresses), read once."""
        try:
            value = self._extra[name]
        except KeyError:
            value = self._extra[name] = self.transport.get_extra_info(name)
        return default if value is None else value

    # -- writing --------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        """Queue a frame; the frames of one loop turn leave together."""
        if self.closed:
            return
        self._out.append(frame)
        if self._flush is None:
            self._flush = self.loop.call_soon(self._write_out)

    def _write_out(self) -> None:
        self._flush = None
        out = self._out
        if out and not self.closed and not self.transport.is_closing():
            self._out = []
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def go_away(self) -> None:
        """No new streams from here on; the session closes when its last stream ends."""
        if not self.going_away:
            self.going_away = True
            self.send(frames.go_away(frames.GO_AWAY_NORMAL))
        if not self.streams:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self._write_out()
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- the connection -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._idle()
        if self.keepalive_s:
            self._keepalive = self.loop.call_later(self.keepalive_s, self._keepalive_due)

    def data_received(self, data: bytes | memoryview) -> None:
        self._heard = self.loop.time()
        try:
            self._reader.feed(data)
        except MuxProtocolError as exc:
            self._broken(str(exc))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for timer in (self._idle_timer, self._keepalive):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._keepalive = None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._out = []
        lost = SessionClosed(self.error or f"mux session closed{f': {exc}' if exc else ''}")
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.session_lost(lost)
        if self._on_lost is not None:
            self._on_lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        for stream in list(self.streams.values()):
            stream.session_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        for stream in list(self.streams.values()):
            stream.session_paused(False)

    def _broken(self, why: str) -> None:
        self.error = f"mux protocol error: {why}"
        self.send(frames.go_away(frames.GO_AWAY_PROTOCOL_ERROR))
        self._write_out()
        self.transport.close()

    # -- frames (FrameSink) ---------------------------------------------------------------

    def on_data(self, stream_id: int, flags: int, chunk: memoryview) -> None:
        stream = self.streams.get(stream_id) or self._accept(stream_id, flags)
        if stream is not None:
            stream.received(flags, chunk)

    def on_window_update(self, stream_id: int, flags: int, delta: int) -> None:
        stream = self.streams.get(stream_id) or self._accept(stream_id, flags)
        if stream is not None:
            stream.window_update(flags, delta)

    def on_ping(self, flags: int, value: int) -> None:
        if flags & SYN:
            self.send(frames.ping(ACK, value))

    def on_go_away(self, code: int) -> None:
        if self._new_stream is None:  # (a client's Go Away only says it opens no more streams)
            self.peer_going_away = True
        if code != frames.GO_AWAY_NORMAL:
            self.error = f"the peer ended the mux session with error code {code}"

    def _accept(self, stream_id: int, flags: int) -> MuxStream | None:
        """The stream a frame with SYN opens (server side); None when it cannot be opened
        (refused with RST) or the frame is for a stream that has ended (dropped)."""
        if not flags & SYN or flags & RST:
            return None
        if self._new_stream is None or stream_id % 2 == 0:
            self._broken(f"stream {stream_id} opened by the wrong side")
            return None
        if self.going_away or len(self.streams) >= self.max_streams:
            self.send(frames.window_update(stream_id, RST, 0))
            return None
        protocol = self._new_stream()
        stream = self.streams[stream_id] = MuxStream(self, stream_id, protocol, opened_by_peer=True)
        self._busy()
        protocol.connection_made(stream)
        return stream

    # -- liveness and idleness -------------------------------------------------------------

    def _keepalive_due(self) -> None:
        now = self.loop.time()
        if self._pinged:
            if self._heard < self._pinged:
                self.error = f"the peer did not answer a keepalive ping within {self.keepalive_timeout_s:g} s"
                self.transport.abort()
                return
            self._pinged = 0.0
        quiet_since = self._heard
        if now - quiet_since >= self.keepalive_s:
            self._pinged = now
            self.send(frames.ping(SYN, 0))
            self._keepalive = self.loop.call_later(self.keepalive_timeout_s, self._keepalive_due)
        else:
            self._keepalive = self.loop.call_at(quiet_since + self.keepalive_s, self._keepalive_due)


    def _busy(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle(self) -> None:
        """No streams: close after the idle timeout, or now when going away."""
        if self.closed:
            return
        if self.going_away or self.peer_going_away:
            self.close()
            return
        self._idle_timer = self.loop.call_later(self.idle_timeout_s, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if not self.streams:
            self.go_away()

    # a server-side session is one of its listener's `connections` (proxy/http1/server.py
    # HttpServer), which it leaves through `on_lost`; its idle timer is its own
    deadline = _NEVER

    def expire(self) -> None:
        pass

    def drain_and_close(self) -> None:
        self.go_away()
