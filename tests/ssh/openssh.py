"""OpenSSH's `ssh` client as a subprocess (ptyterm.PtyProcess runs it in a pseudo-terminal)."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

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
