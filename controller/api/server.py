"""Serving the API on one address, and stopping it gracefully: stop accepting, let in-flight
requests finish (open streams end at once), then close what is left."""
from __future__ import annotations

import logging
import ssl as ssl_module

from aiohttp import web

from controller.errors import Unavailable

from .keys import IN_FLIGHT, STOPPING

log = logging.getLogger("meshtui.api")

DRAIN_SECONDS = 10.0
# A connection with no complete request head for this long is closed: an idle keep-alive
# connection, or a slow client that never finishes its head (slowloris).
HEADER_TIMEOUT_SECONDS = 15.0


def parse_listen(address: str) -> tuple[str, int]:
    """`HOST:PORT`, `[v6]:PORT` or `:PORT` (loopback) -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


class ApiServer:
    def __init__(self, app: web.Application, *, ssl: ssl_module.SSLContext | None = None,
                 drain_seconds: float = DRAIN_SECONDS, header_timeout_seconds: float = HEADER_TIMEOUT_SECONDS):
        self.app = app
        self.ssl = ssl
        self.drain_seconds = drain_seconds
        # aiohttp's keep-alive timer starts with the connection and is not reset by a partial
        # head, so it bounds both an idle connection and an unfinished request head
        self.runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False,
                                    keepalive_timeout=header_timeout_seconds)
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen and return the base URL (with the real port when `port` is 0)."""
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=self.ssl, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await self.runner.cleanup()
            raise Unavailable(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        bound_host, bound_port = self.runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"{'https' if self.ssl else 'http'}://{shown}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        """Stop accepting connections, end open streams, wait (up to the drain time) for requests
        in flight, then close every connection."""
        for site in list(self.runner.sites):
            await site.stop()
        self.app[STOPPING].set()
        if not await self.app[IN_FLIGHT].wait_idle(self.drain_seconds):
            log.warning("%d requests still in flight after %gs; closing their connections", self.app[IN_FLIGHT].count, self.drain_seconds)
        await self.runner.cleanup()
