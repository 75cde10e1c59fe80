"""The TUI of one SSH session: MeshApp on that session's terminal, with the traps of running many
Textual apps in one process and one event loop handled here:

- stdout/stderr capture: every App redirects sys.stdout/sys.stderr to itself for its whole run and
  restores what it found on exit; sessions end in any order, so a restore could put a finished
  app's capture back. Each session's capture is the process's own stream, so the redirects are no-ops.
- the terminal: ChannelDriver reads and writes the SSH channel (no stdin/stdout, no signal handlers,
  no threads), and each session's colour depth comes from its own TERM/COLORTERM, not the server's.
- the task factory: App.run_async installs asyncio's eager task factory on the running loop (Python
  3.12+), which would change how every task of the server (controller, SSH, other sessions) starts;
  `run_session_app` puts the loop's factory back once the app has started.
"""
from __future__ import annotations

import asyncio
import io
import sys

from rich.console import Console

from controller.interface import Controller
from meshtui.tui.app import MeshApp

from .driver import ChannelDriver
from .terminal import ChannelTerminal


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def session_console(colour_env: dict[str, str]) -> Console:
    """A console like App's own (it only measures and styles; the driver writes), but with the
    session's terminal description deciding the colour system."""
    return Console(color_system="auto", file=_Discard(), markup=True, highlight=False, emoji=False, legacy_windows=False,
                   _environ=colour_env, force_terminal=True, safe_box=False, soft_wrap=False)


class SessionApp(MeshApp):
    def __init__(self, controller: Controller, terminal: ChannelTerminal, *, read_only: bool, user: str) -> None:
        super().__init__(controller, read_only=read_only, user=user, driver_class=ChannelDriver)
        self.terminal = terminal  # read by ChannelDriver
        self.console = session_console(terminal.colour_env)
        self._capture_stdout = sys.stdout
        self._capture_stderr = sys.stderr


async def run_session_app(app: SessionApp) -> None:
    loop = asyncio.get_running_loop()
    loop.call_soon(loop.set_task_factory, loop.get_task_factory())  # runs once run_async has set its own
    await app.run_async()
