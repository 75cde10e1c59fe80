"""One SSH session's terminal as the client described it (TERM, size, environment), and the
channel the TUI draws on. The driver of the session's app attaches to it for keys and resizes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    import asyncssh

# Output the client has not read yet, past which the session is ended rather than buffered without
# bound (a client that stopped reading, or a link far slower than the redraws).
MAX_UNSENT_BYTES = 8 * 1024 * 1024


class TerminalListener(Protocol):
    def feed(self, data: str) -> None: ...

    def resize(self, width: int, height: int) -> None: ...


class ChannelTerminal:
    def __init__(self, chan: "asyncssh.SSHServerChannel[str]", on_overflow: Callable[[], None]) -> None:
        self.chan = chan
        self.term_type = chan.get_terminal_type() or ""
        width, height, _, _ = chan.get_terminal_size()
        self.size = (width or 80, height or 24)
        self.env = dict(chan.get_environment())
        self.listener: TerminalListener | None = None
        self.closed = False
        self._on_overflow = on_overflow

    @property
    def colour_env(self) -> dict[str, str]:
        """What decides the colour depth (TERM, COLORTERM if the client sent it), for Rich's detection."""
        env = {"TERM": self.term_type}
        if self.env.get("COLORTERM"):
            env["COLORTERM"] = self.env["COLORTERM"]
        return env

    def write(self, text: str) -> None:
        if self.closed:
            return
        if self.chan.get_write_buffer_size() > MAX_UNSENT_BYTES:
            self._on_overflow()
            return
        try:
            self.chan.write(text)
        except BrokenPipeError:  # the channel is closing (the client left): nothing more to draw
            self.closed = True

    def feed(self, data: str) -> None:
        if self.listener is not None:
            self.listener.feed(data)

    def resize(self, width: int, height: int) -> None:
        self.size = (width, height)
        if self.listener is not None:
            self.listener.resize(width, height)
