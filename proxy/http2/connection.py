"""One HTTP/2 connection on an asyncio transport, either role, with ngh2 (libnghttp2) as the
protocol engine: bytes in, events out, bytes to send (see benchmarks/h2.py for why ngh2).

Each stream has a `StreamHandler` that hears its head, data, trailers and end. Window
updates are manual: received DATA is acknowledged (`ack`) by whoever consumed it, so a
slow reader on the other side of the proxy holds the sender back instead of filling memory.
Writes are coalesced: `mark()` asks for one flush at the end of the current loop turn.

Keepalive (settings.LongLived): with no stream open for `h2_idle_timeout_s` the connection
is closed after a GOAWAY; a peer silent for `h2_keepalive_s` gets a PING and the
connection is closed when the answer does not come within `h2_keepalive_timeout_s`.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Protocol

import ngh2

from proxy.http2.settings import LongLived

log = logging.getLogger(__name__)

Headers = tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]]

CANCEL = 0x08
REFUSED_STREAM = 0x07
INTERNAL_ERROR = 0x02
# more than this queued for a stream, or the transport's buffer full: the side feeding it
# stops acknowledging (and so stops receiving) until it drains
HIGH_WATER = 256 * 1024
STREAM_WINDOW = 1 << 20
CONNECTION_WINDOW = 16 << 20
_CONFIG = ngh2.Configuration(auto_window_update=False)


class StreamHandler(Protocol):
    def on_head(self, headers: Headers, end_stream: bool) -> None: ...
    def on_data(self, data: bytes, end_stream: bool) -> None: ...
    def on_trailers(self, headers: Headers) -> None: ...
    def on_closed(self, error_code: int, reason: str) -> None:
        """Always the last call: `error_code` 0 = ended normally."""


class H2Connection(asyncio.Protocol):
    role: ngh2.Role

    def __init__(self, settings: LongLived, *, ping: bool) -> None:
        self.settings = settings
        self.h2 = ngh2.Connection(self.role, _CONFIG)
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.streams: dict[int, StreamHandler] = {}
        self.closed = False
        self.write_paused = False
        self.error = ""  # why the connection ended, when not normally
        self._flush_pending = False
        self._waiting: list[tuple[int, Callable[[], None]]] = []
        self._ping = ping and settings.h2_keepalive_s > 0
        self._reads = 0
        self._seen_reads = -1
        self._quiet_since = 0.0
        self._ping_sent: float | None = None
        self._idle_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._events = {
            ngh2.RequestReceived: self._on_head, ngh2.ResponseReceived: self._on_head,
            ngh2.DataReceived: self._on_data, ngh2.TrailersReceived: self._on_trailers,
            ngh2.StreamClosed: self._on_stream_closed, ngh2.PingAcknowledged: self._on_ping_ack,
            ngh2.WindowUpdated: self._on_window, ngh2.GoAwayReceived: self._on_goaway,
            ngh2.SettingsReceived: self._on_settings,
        }

    # -- transport events ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.h2.initiate_connection({ngh2.Setting.MAX_CONCURRENT_STREAMS: self.settings.h2_max_concurrent_streams,
                                     ngh2.Setting.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                                     ngh2.Setting.ENABLE_PUSH: 0} if self.role is ngh2.Role.CLIENT else
                                    {ngh2.Setting.MAX_CONCURRENT_STREAMS: self.settings.h2_max_concurrent_streams,
                                     ngh2.Setting.INITIAL_WINDOW_SIZE: STREAM_WINDOW})
        self.h2.set_local_window_size(CONNECTION_WINDOW)
        now = self.loop.time()
        self._idle_since = now
        self._quiet_since = now
        self.flush()
        tick = min(x for x in (self.settings.h2_idle_timeout_s, self.settings.h2_keepalive_s,
                               self.settings.h2_keepalive_timeout_s) if x > 0) / 4
        self._tick_s = max(0.02, min(tick, 5.0))
        self._timer = self.loop.call_later(self._tick_s, self._tick)

    def data_received(self, data: bytes) -> None:
        self._reads += 1
        h2 = self.h2
        try:
            h2.receive_data(data)
            events = h2.events()
        except ngh2.NGH2Error as exc:
            self._fail(f"HTTP/2 protocol error from the peer: {exc}")
            return
        handlers = self._events
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
        self.flush()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._release()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        reason = self.error or (f"connection lost: {exc}" if exc else "connection closed by the peer")
        streams, self.streams = self.streams, {}
        for handler in streams.values():
            handler.on_closed(INTERNAL_ERROR, reason)
        self._waiting.clear()
        self.lost()

    def lost(self) -> None:
        """The connection is gone (subclasses: forget it)."""

    # -- sending -----------------------------------------------------------------------

    def flush(self) -> None:
        """Write what the engine has to send now."""
        self._flush_pending = False
        if self.closed:
            return
        h2 = self.h2
        try:
            data = h2.data_to_send()
            events = h2.events()  # sending closes streams too (their last frame went out)
        except ngh2.NGH2Error as exc:
            self._fail(f"HTTP/2 engine failed: {exc}")
            return
        if data:
            self.transport.write(data)
        if events:
            handlers = self._events
            for event in events:
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(event)
        if self._waiting and not self.write_paused:
            self._release()
        if not h2.want_read and not h2.want_write:
            self.close()  # GOAWAY exchanged and every stream done

    def mark(self) -> None:
        """Flush at the end of this loop turn (writes of several streams leave together)."""
        if not self._flush_pending and not self.closed:
            self._flush_pending = True
            self.loop.call_soon(self.flush)

    def send_data(self, sid: int, data: bytes, end_stream: bool) -> bool:
        """False when the stream can no longer take data (reset, closed)."""
        try:
            self.h2.send_data(sid, data, end_stream=end_stream)
        except ngh2.NGH2Error:
            return False
        self.mark()
        return True

    def writable(self, sid: int) -> bool:
        try:
            return not self.write_paused and self.h2.queued_body_size(sid) <= HIGH_WATER
        except ngh2.NGH2Error:
            return True

    def when_writable(self, sid: int, callback: Callable[[], None]) -> None:
        """Call `callback` once `sid` has drained below the high-water mark (or is gone)."""
        self._waiting.append((sid, callback))

    def ack(self, sid: int, amount: int) -> None:
        """`amount` bytes of DATA received on `sid` were consumed: the peer may send more."""
        if amount and not self.closed:
            try:
                self.h2.acknowledge_received_data(amount, sid)
            except ngh2.NGH2Error:
                return
            self.mark()

    def reset(self, sid: int, code: int = CANCEL) -> None:
        try:
            self.h2.reset_stream(sid, code)
        except ngh2.NGH2Error:
            return
        self.mark()

    def shutdown(self) -> None:
        """Graceful: GOAWAY, then close once the open streams are done."""
        if self.closed:
            return
        try:
            self.h2.send_goaway(0)
        except ngh2.NGH2Error:
            self.close()
            return
        self.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def _fail(self, reason: str) -> None:
        self.error = reason
        log.debug("%s", reason)
        self.closed = True
        self.transport.abort()

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, []
        for sid, callback in waiting:
            if self.writable(sid):
                callback()
            else:
                self._waiting.append((sid, callback))

    # -- events ----------------------------------------------------------------------------

    def _on_head(self, event: ngh2.RequestReceived | ngh2.ResponseReceived) -> None:
        handler = self.streams.get(event.stream_id)
        if handler is not None:
            handler.on_head(event.headers, event.end_stream)

    def _on_data(self, event: ngh2.DataReceived) -> None:
        handler = self.streams.get(event.stream_id)
        if handler is not None:
            handler.on_data(event.data, event.end_stream)
        else:
            self.ack(event.stream_id, len(event.data))

    def _on_trailers(self, event: ngh2.TrailersReceived) -> None:
        handler = self.streams.get(event.stream_id)
        if handler is not None:
            handler.on_trailers(event.headers)

    def _on_stream_closed(self, event: ngh2.StreamClosed) -> None:
        handler = self.streams.pop(event.stream_id, None)
        if not self.streams:
            self._idle_since = self.loop.time()
        if handler is not None:
            reason = "" if not event.error_code else f"stream reset ({_code_name(event.error_code)})"
            handler.on_closed(event.error_code, reason)

    def _on_window(self, event: ngh2.WindowUpdated) -> None:
        pass  # the flush after this batch moves queued DATA out and releases the waiting

    def _on_goaway(self, event: ngh2.GoAwayReceived) -> None:
        pass

    def _on_settings(self, event: ngh2.SettingsReceived) -> None:
        pass

    def _on_ping_ack(self, event: ngh2.PingAcknowledged) -> None:
        self._ping_sent = None

    def add_stream(self, sid: int, handler: StreamHandler) -> None:
        self.streams[sid] = handler
        self._idle_since = None

    # -- idle and keepalive ------------------------------------------------------------------

    def _tick(self) -> None:
        if self.closed:
            return
        now = self.loop.time()
        s = self.settings
        if self._idle_since is not None and not self.streams and now - self._idle_since >= s.h2_idle_timeout_s:
            self.error = f"idle for {s.h2_idle_timeout_s:g} s with no stream open"
            self.shutdown()
            self.close()
            return
        if self._reads != self._seen_reads:
            self._seen_reads = self._reads
            self._quiet_since = now
            self._ping_sent = None
        if self._ping:
            if self._ping_sent is not None:
                if now - self._ping_sent >= s.h2_keepalive_timeout_s:
                    self.error = f"no answer to a keepalive PING within {s.h2_keepalive_timeout_s:g} s"
                    log.info("closing an HTTP/2 connection: %s", self.error)
                    self.transport.abort()
                    self.closed = True
                    return
            elif now - self._quiet_since >= s.h2_keepalive_s:
                self._ping_sent = now
                try:
                    self.h2.ping(os.urandom(8))
                except ngh2.NGH2Error:
                    pass
                self.flush()
        self._timer = self.loop.call_later(self._tick_s, self._tick)


def _code_name(code: int) -> str:
    try:
        return ngh2.ErrorCode(code).name
    except ValueError:
        return f"error code {code}"

