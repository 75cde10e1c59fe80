"""`meshtui serve-ssh`: the TUI for every SSH client holding an authorized key, one TUI per session,
all sessions on one controller (in-process, or attached to a controller's API).

Public-key authentication only; keys come from KeyRing (admins and viewers, re-read when the files
change). A per-address token bucket limits connection attempts before the key exchange."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import asyncssh

from controller.api.server import parse_listen
from controller.interface import Controller

from .hostkey import load_or_create_host_key
from .keys import VIEWER, Grant, KeyRing
from .logfields import logfmt
from .ratelimit import AddressBuckets
from .readonly import ReadOnlyController
from .session import Peer, TuiSession
from .settings import SshSettings

log = logging.getLogger("meshtui.ssh")


class _Connection(asyncssh.SSHServer):
    """One client connection: rate limit on arrival, then public-key authentication."""

    def __init__(self, server: "SshServer") -> None:
        self.server = server
        self.conn: asyncssh.SSHServerConnection | None = None
        self.host = ""
        self.address = ""
        self.user = ""
        self.grant: Grant | None = None
        self.authenticated = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.host, port = conn.get_extra_info("peername")[:2]
        self.address = f"{self.host}:{port}"
        retry = self.server.admit(self.host)
        if retry is not None:
            reason = f"too many connection attempts from {self.host}; retry in {retry:.0f}s"
            log.warning("ssh connection refused %s", logfmt(addr=self.address, reason=reason))
            # after asyncssh has sent its version line, so the client can read the disconnect
            asyncio.get_running_loop().call_soon(conn.disconnect, asyncssh.DISC_TOO_MANY_CONNECTIONS, reason)
            return
        self.server.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.server.connections.discard(self.conn)
        if not self.authenticated and self.user:
            log.info("ssh login failed %s", logfmt(user=self.user, addr=self.address, reason=str(exc) if exc else "no authorized key"))

    def begin_auth(self, username: str) -> bool:
        self.user = username
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # asyncssh calls this for every key offered and again for the signed request, which comes
        # last: the grant kept is the one of the key that authenticated.
        self.grant = self.server.keys.grant(key, self.host, self.host)
        return self.grant is not None

    def auth_completed(self) -> None:
        self.authenticated = True

    def session_requested(self) -> TuiSession | bool:
        if self.grant is None:
            return False
        return TuiSession(self.server, Peer(self.user, self.address, self.grant))


class SshServer:
    def __init__(self, controller: Controller, settings: SshSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.controller = controller
        self.viewer_controller = ReadOnlyController(controller)
        self.settings = settings
        self.keys = KeyRing(settings.authorized_keys, settings.viewer_keys)
        self.sessions: set[TuiSession] = set()
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.host_key: asyncssh.SSHKey | None = None
        self.address: tuple[str, int] = ("", 0)
        self._buckets = AddressBuckets(settings.rate_limit)
        self._clock = clock
        self._acceptor: asyncssh.SSHAcceptor | None = None

    def controller_for(self, role: str) -> Controller:
        return self.viewer_controller if role == VIEWER else self.controller

    def admit(self, host: str) -> float | None:
        """None when `host` may connect now, else the seconds until it may."""
        now = self._clock()
        if self._buckets.allow(host, now):
            return None
        return max(1.0, self._buckets.retry_after(host, now))

    def reload_keys(self) -> None:
        self.keys.reload()

    async def start(self) -> tuple[str, int]:
        """Listen; returns (host, port) with the real port when the settings ask for port 0."""
        host, port = parse_listen(self.settings.listen)
        self.host_key = load_or_create_host_key(self.settings.host_key)
        self.keys.reload()
        self._acceptor = await asyncssh.create_server(
            lambda: _Connection(self), host, port,
            server_host_keys=[self.host_key],
            line_editor=False, encoding="utf-8", errors="replace",
            login_timeout=self.settings.login_timeout,
            keepalive_interval=30, keepalive_count_max=4,
            gss_host=None, known_client_hosts=None,
            agent_forwarding=False, x11_forwarding=False, allow_scp=False,
        )
        self.address = (host, self._acceptor.get_port())
        log.info("ssh server listening %s", logfmt(addr=f"{host}:{self.address[1]}", host_key=self.host_key.get_fingerprint("sha256"),
                                                     max_sessions=self.settings.max_sessions))
        return self.address

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, end every session (each is told why), then close every connection."""
        if self._acceptor is not None:
            self._acceptor.close()
        tasks = [s.task for s in self.sessions if s.task is not None]
        for session in list(self.sessions):
            session.end("the server is stopping", notice="the server is stopping")
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for conn in list(self.connections):
            conn.close()
        if self._acceptor is not None:
            await self._acceptor.wait_closed()
            self._acceptor = None
