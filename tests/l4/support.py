"""Backends for the L4 tests: a server that answers HTTP/1.1 or echoes anything else (client
speaks first), and one that says its name first, then echoes (server speaks first)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


async def _serve_dual(name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read(65536)
    if data[:4] in (b"GET ", b"POST"):
        while b"\r\n\r\n" not in data and (more := await reader.read(65536)):
            data += more
        path = data.split(b" ", 2)[1]
        body = b"%s http %s" % (name.encode(), path)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    else:
        while data:
            writer.write(data)
            await writer.drain()
            data = await reader.read(65536)
    await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def dual_backend(name: str) -> AsyncIterator[int]:
    """Port of a server that answers `GET <path>` with `<name> http <path>`, else echoes."""
    server = await asyncio.start_server(lambda r, w: _serve_dual(name, r, w), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@contextlib.asynccontextmanager
async def greeting_backend(name: str) -> AsyncIterator[int]:
    """Port of a server that says `<name>\\n` first, then echoes."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(name.encode() + b"\n")
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def echo_through(host: str, port: int, payload: bytes, *, half_close: bool = True) -> bytes:
    """Send `payload` on a new connection; what comes back (all of it after a half-close,
    else as many bytes as were sent)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        if half_close:
            writer.write_eof()
            return await asyncio.wait_for(reader.read(), 10)
        return await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    finally:
        writer.close()


def metric(text: str, name: str, **labels: str) -> int:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total
