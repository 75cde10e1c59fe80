"""OpenSSH's `ssh` client as a subprocess, optionally in a pseudo-terminal of a given size."""
from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import shutil
import struct
import termios
from pathlib import Path

import pyte
import pytest

SSH = shutil.which("ssh")
needs_ssh = pytest.mark.skipif(SSH is None, reason="OpenSSH client missing: run `make tools` (.ci/install-tools)")


def ssh_args(port: int, identity: Path | None, user: str, *extra: str) -> list[str]:
    args = [SSH or "ssh", "-p", str(port), "-l", user, "-F", "/dev/null",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ConnectTimeout=10"]
    if identity is not None:
        args += ["-i", str(identity)]
    return [*args, *extra, "127.0.0.1"]


async def run_ssh(args: list[str], timeout: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


class PtySsh:
    """`ssh -tt` with its stdin/stdout on a pseudo-terminal of `size`, read into a pyte screen."""

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
