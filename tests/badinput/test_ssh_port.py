"""The SSH port against garbage, a truncated banner, an oversized banner, a slowloris and a half-close,
while a well-behaved client keeps connecting and authenticating."""
from __future__ import annotations

import asyncio
import os

import asyncssh

from tests.badinput.attacks import read_until_closed
from tests.ssh.conftest import connect, controller, keys, start_server  # noqa: F401  (fixtures)

LOGIN_TIMEOUT_S = 1.0


async def _raw(host: str, port: int, payload: bytes, *, eof: bool = False, trickle: float = 0.0) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if trickle:
            for byte in payload:
                writer.write(bytes([byte]))
                await asyncio.sleep(trickle)
                if reader.at_eof():
                    break
        else:
            writer.write(payload)
        if eof:
            writer.write_eof()
        return await read_until_closed(reader, timeout=LOGIN_TIMEOUT_S + 4)
    except (ConnectionResetError, BrokenPipeError):
        return b""
    finally:
        writer.close()


async def test_bad_clients_are_cut_off_while_a_good_client_is_served(start_server, keys):  # noqa: F811
    server = await start_server(login_timeout=LOGIN_TIMEOUT_S)
    host, port = server.address
    good_logins = 0
    stop = asyncio.Event()

    async def good_client() -> None:
        nonlocal good_logins
        while not stop.is_set():
            conn = await connect(server, keys.admin)
            good_logins += 1
            conn.close()
            await conn.wait_closed()
            await asyncio.sleep(0.1)

    good = asyncio.create_task(good_client())
    try:
        answers = await asyncio.gather(
            _raw(host, port, os.urandom(2048) + b"\r\n"),  # garbage
            _raw(host, port, b"SSH-2.0-trunc", eof=True),  # a banner cut short, then half-closed
            _raw(host, port, b"SSH-2.0-" + b"x" * 70_000 + b"\r\n"),  # an oversized banner
            _raw(host, port, b"SSH-2.0-slow-client-that-never-finishes\r\n", trickle=0.3),  # slowloris
        )
        for answer in answers:
            # the server may greet with its own banner (and key exchange offer) first; then it closes:
            # read_until_closed fails the test if the connection stays open
            assert answer == b"" or answer.startswith(b"SSH-2.0-"), answer[:80]
    finally:
        stop.set()
        await good
    assert good_logins >= 3
    # and the server still takes a normal login afterwards
    conn = await connect(server, keys.admin)
    conn.close()
    await conn.wait_closed()
    assert isinstance(conn, asyncssh.SSHClientConnection)
