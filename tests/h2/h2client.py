"""A small HTTP/2 client for the tests (ngh2 over asyncio streams, independent of the proxy's
own client side): requests with bodies and trailers, the PINGs and GOAWAY it receives, and
a `silent` switch that makes it stop reading and answering, as a dead peer."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import ngh2


@dataclass
class Reply:
    status: int = 0
    headers: list = field(default_factory=list)
    body: bytes = b""
    trailers: list = field(default_factory=list)
    reset: int | None = None  # RST_STREAM code when the stream was reset

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers + self.trailers:
            if n == name:
                return v
        return None


class H2TestClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = ngh2.Connection(ngh2.Role.CLIENT)
        self.replies: dict[int, Reply] = {}
        self.done: dict[int, asyncio.Future[Reply]] = {}
        self.chunks: dict[int, asyncio.Queue[bytes]] = {}
        self.pings = 0
        self.goaway: ngh2.GoAwayReceived | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.silent = False
        self.error: Exception | None = None  # what ended the connection, when not the peer closing it
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, address: str, ssl=None, server_hostname: str | None = None) -> "H2TestClient":
        host, port = address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port), ssl=ssl, server_hostname=server_hostname)
        client = cls(reader, writer)
        client.conn.initiate_connection()
        client._flush()
        return client

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                if self.silent:
                    continue
                self.conn.receive_data(data)
                for ev in self.conn.events():
                    self._event(ev)
                self._flush()
        except (ConnectionError, ngh2.NGH2Error) as exc:
            self.error = exc
        finally:
            for fut in self.done.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"connection closed ({self.error or 'by the peer'})"))
            if not self.closed.done():
                self.closed.set_result(None)

    def _event(self, ev) -> None:
        sid = getattr(ev, "stream_id", 0)
        reply = self.replies.get(sid)
        if isinstance(ev, ngh2.ResponseReceived):
            reply.status = int(dict(ev.headers)[b":status"])
            reply.headers = list(ev.headers)
        elif isinstance(ev, ngh2.DataReceived):
            reply.body += ev.data
            self.chunks[sid].put_nowait(ev.data)
        elif isinstance(ev, ngh2.TrailersReceived):
            reply.trailers = list(ev.headers)
        elif isinstance(ev, ngh2.StreamReset):
            reply.reset = ev.error_code
        elif isinstance(ev, ngh2.StreamClosed):
            fut = self.done.get(sid)
            if fut is not None and not fut.done():
                fut.set_result(reply)
        elif isinstance(ev, ngh2.PingReceived):
            self.pings += 1
        elif isinstance(ev, ngh2.GoAwayReceived):
            self.goaway = ev

    def start(self, authority: str, path: str = "/", *, method: str = "GET", headers: list | None = None,
              body: bytes = b"", end: bool = True) -> int:
        head = [(b":method", method.encode()), (b":scheme", b"http"), (b":authority", authority.encode()),
                (b":path", path.encode()), *(headers or [])]
        sid = self.conn.send_request(head, end_stream=end and not body)
        self.replies[sid] = Reply()
        self.chunks[sid] = asyncio.Queue()
        self.done[sid] = asyncio.get_running_loop().create_future()
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self._flush()
        return sid

    def send(self, sid: int, data: bytes, end: bool = False) -> None:
        self.conn.send_data(sid, data, end_stream=end)
        self._flush()

    def cancel(self, sid: int) -> None:
        self.conn.reset_stream(sid, 0x8)
        self._flush()

    async def reply(self, sid: int, timeout: float = 5.0) -> Reply:
        return await asyncio.wait_for(asyncio.shield(self.done[sid]), timeout)

    async def request(self, authority: str, path: str = "/", timeout: float = 5.0, **kw) -> Reply:
        return await self.reply(self.start(authority, path, **kw), timeout)

    async def close(self) -> None:
        self._task.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
