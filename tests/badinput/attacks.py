"""Misbehaving clients on raw sockets, and a well-behaved client that keeps calling alongside them."""
from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass, field

import aiohttp

CLOSE_WAIT_S = 5.0
STILL_OPEN = b"<still open>"


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = CLOSE_WAIT_S) -> bytes:
    """Everything the server sends until it closes; a reset counts as closed. Fails if it never closes."""
    chunks = []
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            chunks.append(chunk)
    except (ConnectionResetError, ssl.SSLError):
        pass
    return b"".join(chunks)


def refused_with_4xx_or_closed(answer: bytes) -> bool:
    return answer == b"" or answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4"))


async def garbage(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(os.urandom(512) + b"\r\n\r\n")
    try:
        return await read_until_closed(reader)
    finally:
        writer.close()


async def truncated(host: str, port: int, head: bytes) -> bytes:
    """A request cut short, then the client's half of the connection closed."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head)
    writer.write_eof()
    try:
        return await read_until_closed(reader)
    finally:
        writer.close()


async def oversized_headers(host: str, port: int, size: int = 128 * 1024) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
        try:
            await writer.drain()
        except ConnectionError:
            pass
        return await read_until_closed(reader)
    finally:
        writer.close()


async def slowloris(host: str, port: int, *, every_s: float, for_s: float) -> tuple[bytes, float]:
    """Trickles a header one byte at a time; returns (answer, seconds until the server closed)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while loop.time() - started < for_s:
            if reader.at_eof() or writer.is_closing():
                break
            try:
                writer.write(b"a")
                await writer.drain()
            except ConnectionError:
                break
            try:
                data = await asyncio.wait_for(reader.read(65536), every_s)
            except asyncio.TimeoutError:
                continue
            except ConnectionResetError:
                return b"", loop.time() - started
            return data + await read_until_closed(reader), loop.time() - started
        try:
            return await read_until_closed(reader, 0.5), loop.time() - started
        except asyncio.TimeoutError:
            return STILL_OPEN, loop.time() - started
    finally:
        writer.close()


@dataclass
class GoodClient:
    """Calls one URL in a loop until stopped; records every status (or error)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | bool | None = None
    outcomes: list[object] = field(default_factory=list)
    _task: asyncio.Task | None = None

    async def __aenter__(self) -> "GoodClient":
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    async with session.get(self.url, headers=self.headers, ssl=self.ssl_context) as r:
                        await r.read()
                        self.outcomes.append(r.status)
                except (aiohttp.ClientError, asyncio.TimeoutError, ssl.SSLError) as err:
                    self.outcomes.append(repr(err))
                await asyncio.sleep(0.02)

    def assert_served(self, minimum: int = 5) -> None:
        assert len(self.outcomes) >= minimum, self.outcomes
        assert set(self.outcomes) == {200}, [o for o in self.outcomes if o != 200][:5]
