"""The client side of HTTP/2 connections: the proxy's upstream connections, each carrying
many concurrent streams (see pool.py)."""
from __future__ import annotations

import ngh2

from proxy.http2.connection import REFUSED_STREAM, H2Connection, Headers, StreamHandler
from proxy.http2.settings import LongLived

_MAX_CONCURRENT = ngh2.Setting.MAX_CONCURRENT_STREAMS


class H2ClientConnection(H2Connection):
    role = ngh2.Role.CLIENT

    def __init__(self, key: tuple, settings: LongLived, *, ping: bool, on_lost) -> None:
        super().__init__(settings, ping=ping)
        self.key = key
        self.draining = False  # GOAWAY received: no new stream
        self._on_lost = on_lost
        self._max_streams = 100  # until the peer's SETTINGS say otherwise

    @property
    def available(self) -> bool:
        """Can carry one more stream now."""
        return not self.closed and not self.draining and len(self.streams) < self._max_streams

    def open(self, headers: Headers, end_stream: bool, handler: StreamHandler) -> int:
        """Send a request's head; `handler` hears the response. Raises ngh2.NGH2Error when
        the connection can take no new stream."""
        sid = self.h2.send_request(headers, end_stream=end_stream)
        self.add_stream(sid, handler)
        self.mark()
        return sid

    def trailers(self, sid: int, headers: Headers) -> bool:
        try:
            self.h2.send_trailers(sid, headers)
        except ngh2.NGH2Error:
            return False
        self.mark()
        return True

    def _on_settings(self, event: ngh2.SettingsReceived) -> None:
        limit = event.settings.get(_MAX_CONCURRENT)
        if limit is not None:
            self._max_streams = limit

    def _on_goaway(self, event: ngh2.GoAwayReceived) -> None:
        self.draining = True
        # streams the peer will not process: refused, so safe to send elsewhere
        for sid in [s for s in self.streams if s > event.last_stream_id]:
            handler = self.streams.pop(sid)
            handler.on_closed(REFUSED_STREAM, "the upstream is going away (GOAWAY) and did not process the request")

    def lost(self) -> None:
        self._on_lost(self)
