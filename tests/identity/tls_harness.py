"""A real TLS echo server on 127.0.0.1 and a client that reports how a connection ended."""
from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from controller.identity import Identity, identity_from_peercert


@dataclass
class EchoServer:
    """Answers every accepted TLS connection with `ok <caller identity URI>` per line received.
    The handshake runs in the handler (start_tls) so a refusal's reason is recorded."""

    server: asyncio.Server | None = None
    callers: list[Identity | None] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    ctx: ssl.SSLContext | None = None

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def start(self, ctx: ssl.SSLContext) -> "EchoServer":
        self.ctx = ctx
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(self.ctx)
        except (ssl.SSLError, ConnectionError) as err:
            self.refusals.append(str(err))
            writer.close()
            return
        caller = identity_from_peercert(writer.get_extra_info("ssl_object"))
        self.callers.append(caller)
        try:
            while line := await reader.readline():
                writer.write(b"ok " + (caller.uri if caller else "-").encode() + b" " + line)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@dataclass
class Outcome:
    reply: bytes = b""
    error: str = ""
    server_serial: int | None = None

    @property
    def accepted(self) -> bool:
        return self.reply.startswith(b"ok ")


async def call(port: int, ctx: ssl.SSLContext, server_hostname: str | None) -> Outcome:
    """Connect, send one line, read the reply. A refused handshake shows up as an error here
    (with TLS 1.3 a rejected client certificate surfaces on the first read)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=server_hostname), 5
        )
    except (ssl.SSLError, ConnectionError) as err:
        return Outcome(error=str(err))
    out = Outcome(server_serial=int(writer.get_extra_info("ssl_object").getpeercert()["serialNumber"], 16))
    try:
        writer.write(b"hello\n")
        await writer.drain()
        out.reply = await asyncio.wait_for(reader.readline(), 5)
        if not out.reply:
            out.error = "connection closed by the server"
    except (ssl.SSLError, ConnectionError) as err:
        out.error = str(err)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ssl.SSLError, ConnectionError):
            pass
    return out
