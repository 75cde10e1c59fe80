"""A program in a real pseudo-terminal, as a person runs it in a terminal window."""
from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import termios

import pyte


class PtyProcess:
    """A program with stdin/stdout/stderr on a pseudo-terminal of `size` (TERM=xterm-256color), its
    output read into a pyte screen."""

    def __init__(self, args: list[str], size: tuple[int, int]) -> None:
        self.args = args
        self.size = size
        self.screen = pyte.Screen(*size)
        self._stream = pyte.ByteStream(self.screen)
        self.proc: asyncio.subprocess.Process | None = None
        self.master = -1

    async def start(self) -> None:
        self.master, slave = pty.openpty()
        width, height = self.size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color"}
        self.proc = await asyncio.create_subprocess_exec(*self.args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                                         start_new_session=True)
        os.close(slave)
        os.set_blocking(self.master, False)
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the client closed the terminal
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
            return
        self._stream.feed(data)

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    async def wait_text(self, text: str, timeout: float = 15) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in self.text:
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {text!r}; screen:\n{self.text}")
            await asyncio.sleep(0.05)

    async def type(self, *keys: str, pause: float = 0.3) -> None:
        for key in keys:
            os.write(self.master, key.encode())
            await asyncio.sleep(pause)

    async def wait(self, timeout: float = 10) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.master >= 0:
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            self.master = -1
