"""A real SSH client session with a PTY (asyncssh's client), read into a terminal emulator (pyte)
so tests assert what a person would see; the raw bytes are kept too."""
from __future__ import annotations

import asyncio
import re
import time

import asyncssh
import pyte

CURSOR_MOVE = re.compile(rb"\x1b\[(\d+);(\d+)H")


class Terminal:
    def __init__(self, proc: asyncssh.SSHClientProcess, size: tuple[int, int]) -> None:
        self.proc = proc
        self.size = size
        self.screen = pyte.Screen(*size)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            data = await self.proc.stdout.read(65536)
            if not data:
                return
            self.raw += data
            self._stream.feed(data)

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    @property
    def lines(self) -> list[str]:
        return list(self.screen.display)

    def mark(self) -> int:
        """A position in the raw output, to look only at what came after it."""
        return len(self.raw)

    def moves_since(self, mark: int) -> list[tuple[int, int]]:
        """(row, column), 1-based, of every cursor move written since `mark`."""
        return [(int(r), int(c)) for r, c in CURSOR_MOVE.findall(bytes(self.raw[mark:]))]

    async def wait_for(self, predicate, timeout: float = 10.0, what: str = "screen") -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if self._reader.done():
                raise AssertionError(f"session ended while waiting for {what}; screen:\n{self.text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{self.text}")
            await asyncio.sleep(0.05)

    async def wait_text(self, text: str, timeout: float = 10.0) -> None:
        await self.wait_for(lambda t: text in t.text, timeout, repr(text))

    async def type(self, *keys: str, pause: float = 0.3) -> None:
        """Each key as its own write, with a pause, as a person types."""
        for key in keys:
            self.proc.stdin.write(key.encode())
            await asyncio.sleep(pause)

    def resize(self, width: int, height: int) -> None:
        self.size = (width, height)
        self.screen.resize(lines=height, columns=width)
        self.proc.change_terminal_size(width, height)

    async def ended(self, timeout: float = 10.0) -> int | None:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        await asyncio.wait_for(self.proc.wait_closed(), timeout)
        return self.proc.exit_status

    def stop_reading(self) -> None:
        self._reader.cancel()


async def open_terminal(conn: asyncssh.SSHClientConnection, size: tuple[int, int], term: str = "xterm-256color",
                        env: dict[str, str] | None = None) -> Terminal:
    proc = await conn.create_process(term_type=term, term_size=size, encoding=None, env=env or {})
    return Terminal(proc, size)
