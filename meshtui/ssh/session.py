"""One SSH session: a terminal check, then the TUI on that session's terminal until the user quits,
the client leaves, the session idles out or the server stops; one log line when it ends.

A session without a PTY, one that asks to run a command, or one over the server's limit gets one
line saying why and exit status 1. Whatever goes wrong inside a session ends that session only."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncssh

from .app import SessionApp, run_session_app
from .keys import VIEWER, Grant
from .logfields import logfmt
from .terminal import ChannelTerminal

if TYPE_CHECKING:
    from .server import SshServer

log = logging.getLogger("meshtui.ssh")

NO_PTY = "this server shows a terminal UI and needs a terminal: connect with `ssh -t`"
NO_COMMANDS = "this server runs no commands: connect without one to get the TUI"


@dataclass(frozen=True)
class Peer:
    user: str  # the SSH user name, recorded in the audit log of the session's writes
    address: str  # host:port of the client
    grant: Grant


class TuiSession(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    def __init__(self, server: "SshServer", peer: Peer) -> None:
        self.server = server
        self.peer = peer
        self.chan: asyncssh.SSHServerChannel | None = None  # type: ignore[type-arg]
        self.terminal: ChannelTerminal | None = None
        self.app: SessionApp | None = None
        self.task: asyncio.Task[None] | None = None
        self.started = time.monotonic()
        self.last_input = self.started
        self._command: str | None = None
        self._end_reason = ""
        self._notice = ""
        self._idle_timer: asyncio.TimerHandle | None = None

    # asyncssh callbacks ------------------------------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHServerChannel) -> None:  # type: ignore[override,type-arg]
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: object) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def session_started(self) -> None:
        assert self.chan is not None
        refusal = self._refusal()
        if refusal:
            eol = "\r\n" if self.chan.get_terminal_type() else "\n"
            self.chan.write(f"meshtui: {refusal}{eol}")
            self.chan.exit(1)
            log.info("ssh session refused %s", logfmt(**self._fields(), reason=refusal))
            return
        self.terminal = ChannelTerminal(self.chan, on_overflow=lambda: self.end("the client stopped reading its output"))
        try:
            self.app = SessionApp(self.server.controller_for(self.peer.grant.role), self.terminal,
                                  read_only=self.peer.grant.role == VIEWER, user=self.peer.user)
        except Exception as e:  # noqa: BLE001 - this session cannot start; the server goes on
            log.exception("ssh session of %s@%s could not start", self.peer.user, self.peer.address)
            self.chan.write(f"meshtui: the TUI could not start: {type(e).__name__}: {e}\r\n")
            self.chan.exit(1)
            return
        self.server.sessions.add(self)
        self.task = asyncio.ensure_future(self._run())

    def data_received(self, data: str, datatype: int | None) -> None:
        self.last_input = time.monotonic()
        if self.terminal is not None:
            self.terminal.feed(data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self.terminal is not None and width and height:
            self.terminal.resize(width, height)

    def eof_received(self) -> bool:
        self.end("the client closed its input")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.terminal is not None:
            self.terminal.closed = True
        self.end(f"connection lost ({exc})" if exc else "the client left")

    # the session -------------------------------------------------------------------------------
    def _refusal(self) -> str:
        assert self.chan is not None
        if self._command is not None:
            return NO_COMMANDS
        if not self.chan.get_terminal_type():
            return NO_PTY
        if len(self.server.sessions) >= self.server.settings.max_sessions:
            return f"the server has its maximum of {self.server.settings.max_sessions} sessions; try again later"
        return ""

    def end(self, reason: str, notice: str = "") -> None:
        """Stop the session's TUI (idempotent); `notice` is written to the terminal afterwards."""
        if self._end_reason or self.app is None or (self.task is not None and self.task.done()):
            return
        self._end_reason, self._notice = reason, notice
        self.app.exit()

    async def _run(self) -> None:
        assert self.chan is not None and self.terminal is not None and self.app is not None
        self._arm_idle_timer()
        failure = ""
        try:
            await run_session_app(self.app)
            if self.app.return_code:
                failure = "the TUI stopped on an error"
        except Exception as e:  # noqa: BLE001 - this session ends; the server and the other sessions go on
            log.exception("ssh session of %s@%s failed", self.peer.user, self.peer.address)
            failure = f"failed: {type(e).__name__}: {e}"
        finally:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self.server.sessions.discard(self)
            if self._notice:
                self.terminal.write(f"meshtui: {self._notice}\r\n")
            if not self.terminal.closed:
                self.chan.exit(1 if failure else 0)
            log.info("ssh session ended %s", logfmt(
                **self._fields(), colors=self.app.console.color_system or "none",
                duration=f"{time.monotonic() - self.started:.1f}s", reason=self._end_reason or failure or "quit"))

    def _arm_idle_timer(self) -> None:
        timeout = self.server.settings.idle_timeout
        if timeout <= 0:
            return
        remaining = timeout - (time.monotonic() - self.last_input)
        if remaining <= 0:
            self.end(f"idle for {timeout:g}s", notice=f"no input for {timeout:g}s; session closed")
        else:
            self._idle_timer = asyncio.get_running_loop().call_later(remaining, self._arm_idle_timer)

    def _fields(self) -> dict[str, object]:
        assert self.chan is not None
        size = self.terminal.size if self.terminal else self.chan.get_terminal_size()[:2]
        return dict(user=self.peer.user, role=self.peer.grant.role, addr=self.peer.address, key=self.peer.grant.fingerprint,
                    term=self.chan.get_terminal_type() or "none", size=f"{size[0]}x{size[1]}")
