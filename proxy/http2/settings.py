"""How long-lived connections are kept (HTTP/2, WebSocket, opaque TCP): idle timeouts and
HTTP/2 keepalive PINGs. One value per proxy process (`DataPlane(longlived=...)`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LongLived:
    # An HTTP/2 connection with no open stream for this long is closed (GOAWAY first);
    # one with a stream open never is, however quiet the stream.
    h2_idle_timeout_s: float = 300.0
    # PING a peer that has sent nothing for this long (0 = never); close the connection
    # when the answer does not come within h2_keepalive_timeout_s. Proxies ping clients
    # and gateways; never application servers, which may police pings (gRPC's
    # too_many_pings).
    h2_keepalive_s: float = 30.0
    h2_keepalive_timeout_s: float = 10.0
    h2_max_concurrent_streams: int = 1000
    # An upgraded (WebSocket) or opaque TCP connection with no byte either way for this
    # long is closed (0 = never); the sockets also use TCP keepalive.
    tunnel_idle_timeout_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("h2_idle_timeout_s", "h2_keepalive_s", "h2_keepalive_timeout_s", "tunnel_idle_timeout_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"LongLived.{name} must be >= 0, got {getattr(self, name)}")
        if self.h2_idle_timeout_s == 0:
            raise ValueError("LongLived.h2_idle_timeout_s must be > 0")
        if self.h2_max_concurrent_streams < 1:
            raise ValueError(f"LongLived.h2_max_concurrent_streams must be >= 1, got {self.h2_max_concurrent_streams}")
