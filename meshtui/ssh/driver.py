"""A Textual driver that draws on an SSH channel and reads its keys, so many apps can share one
process and one event loop: it starts no threads, installs no signal handlers and never touches
the process's stdin/stdout (LinuxDriver does all three)."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from textual import constants, events
from textual._xterm_parser import XTermParser
from textual.driver import Driver
from textual.geometry import Size
from textual.message import Message

from .terminal import ChannelTerminal

if TYPE_CHECKING:
    from textual.app import App

START = (
    "\x1b[?1049h"  # alternate screen
    "\x1b[?25l"  # hide the cursor
    "\x1b[?1004h"  # focus in/out events
    "\x1b[?2004h"  # bracketed paste
    "\x1b[?7l"  # no line wrap
    "\x1b[?2026$p"  # ask whether the terminal has synchronized output (the parser reads the answer)
)
MOUSE_ON = "\x1b[?1000h\x1b[?1003h\x1b[?1015h\x1b[?1006h"
MOUSE_OFF = "\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l"
STOP = "\x1b[?2004l\x1b[?7h\x1b[?1004l\x1b[?1049l\x1b[?25h"


class ChannelDriver(Driver):
    """The app must have a `terminal` attribute (a ChannelTerminal) before it runs."""

    def __init__(self, app: "App[Any]", *, debug: bool = False, mouse: bool = True, size: tuple[int, int] | None = None) -> None:
        terminal: ChannelTerminal = app.terminal  # type: ignore[attr-defined]
        # the first frame is drawn at this size, before the Resize event arrives
        super().__init__(app, debug=debug, mouse=mouse, size=size or terminal.size)
        self.terminal = terminal
        self._parser = XTermParser()
        self._tick: asyncio.TimerHandle | None = None
        self._reading = False

    def write(self, data: str) -> None:
        self.terminal.write(data)

    def send_message(self, message: Message) -> None:
        self._app.post_message(message)  # input arrives on the app's own loop: no thread hop

    def start_application_mode(self) -> None:
        self.write(START + (MOUSE_ON if self._mouse else ""))
        self._reading = True
        self.terminal.listener = self
        self.resize(*self.terminal.size)

    def feed(self, data: str) -> None:
        if not self._reading:
            return
        for message in self._parser.feed(data):
            self.process_message(message)
        # A lone ESC is a key only once no sequence follows it within ESCAPE_DELAY.
        if self._tick is not None:
            self._tick.cancel()
        self._tick = self._loop.call_later(constants.ESCAPE_DELAY + 0.01, self._flush_parser)

    def _flush_parser(self) -> None:
        self._tick = None
        if self._reading:
            for message in self._parser.tick():
                self.process_message(message)

    def resize(self, width: int, height: int) -> None:
        size = Size(width, height)
        self.send_message(events.Resize(size, size))

    def disable_input(self) -> None:
        self._reading = False
        self.terminal.listener = None
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None

    def stop_application_mode(self) -> None:
        self.disable_input()
        self.write((MOUSE_OFF if self._mouse else "") + STOP)
