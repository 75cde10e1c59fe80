"""The mux between proxies (proxy/mux): yamux frames cut anywhere, flow control, resets and
sessions over real TLS on loopback, and the outbound proxy's HTTP/1.1 to a gateway riding
one session."""
from __future__ import annotations

import asyncio
import hashlib
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.http1.server import Request, Response
from proxy.mux import MUX_ALPN, frames
from proxy.mux.connector import DialFailed, MuxConnector
from proxy.mux.frames import ACK, FIN, INITIAL_WINDOW, RST, SYN, FrameReader, MuxProtocolError
from proxy.mux.session import MuxSession
from proxy.mux.stream import StreamReset
from proxy.tls.tls import MuxClientContext, client_context, server_context
from tests.proxy.http_support import (
    config, data_plane, endpoint, gateway_rule, make_ca, make_leaf, route, upstreams, url,
)

pytestmark = pytest.mark.timeout(30)


# -- frames (pure) ------------------------------------------------------------------------


class Recorder:
    """A FrameSink that writes down what it is told, a Data frame's chunks joined."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self._open: list | None = None  # the Data frame whose chunks are being joined

    def on_data(self, stream_id: int, flags: int, chunk: memoryview) -> None:
        if self._open is not None and self._open[1] == stream_id and not flags & SYN:
            self._open[2] |= flags
            self._open[3] += bytes(chunk)
        else:
            self._open = ["data", stream_id, flags, bytes(chunk)]
            self.events.append(self._open)  # type: ignore[arg-type]
        if flags & FIN:
            self._open = None

    def on_window_update(self, stream_id: int, flags: int, delta: int) -> None:
        self._open = None
        self.events.append(("window", stream_id, flags, delta))

    def on_ping(self, flags: int, value: int) -> None:
        self._open = None
        self.events.append(("ping", flags, value))

    def on_go_away(self, code: int) -> None:
        self._open = None
        self.events.append(("go away", code))


def frame_of(event: tuple) -> bytes:
    kind = event[0]
    if kind == "data":
        return frames.data_frame(event[1], event[2], event[3])
    if kind == "window":
        return frames.window_update(event[1], event[2], event[3])
    if kind == "ping":
        return frames.ping(event[1], event[2])
    return frames.go_away(event[1])


# each Data frame opens (SYN) and ends (FIN) its own stream, so the Recorder can tell frames apart
_events = st.lists(st.one_of(
    st.tuples(st.just("data"), st.integers(1, 2**32 - 1).map(lambda n: n | 1), st.just(SYN | FIN),
              st.binary(max_size=300)),
    st.tuples(st.just("window"), st.integers(0, 2**32 - 1), st.sampled_from([0, ACK, FIN, RST]),
              st.integers(0, 2**32 - 1)),
    st.tuples(st.just("ping"), st.sampled_from([SYN, ACK]), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("go away"), st.integers(0, 2)),
), max_size=12)


@settings(max_examples=200, deadline=None)
@given(_events, st.lists(st.integers(0, 4000), max_size=8))
def test_frames_cut_anywhere_reach_the_sink_as_sent(events, cuts):
    wire = b"".join(frame_of(e) for e in events)
    sink = Recorder()
    reader = FrameReader(sink)
    at = 0
    for cut in sorted(c for c in cuts if c <= len(wire)) + [len(wire)]:
        reader.feed(wire[at:cut])
        at = cut
    assert [tuple(e) for e in sink.events] == [tuple(e) for e in events]


def test_a_payload_cut_in_three_carries_syn_first_and_fin_last():
    seen = []

    class Sink(Recorder):
        def on_data(self, stream_id, flags, chunk):
            seen.append((stream_id, flags, bytes(chunk)))

    reader = FrameReader(Sink())
    wire = frames.data_frame(7, SYN | FIN, b"abcdefgh")
    for part in (wire[:14], wire[14:17], wire[17:]):
        reader.feed(part)
    assert seen == [(7, SYN, b"ab"), (7, 0, b"cde"), (7, FIN, b"fgh")]


def test_a_frame_of_another_version_or_an_unknown_type_is_refused_by_name():
    with pytest.raises(MuxProtocolError, match="version 1"):
        FrameReader(Recorder()).feed(frames.header(1, frames.DATA, 0, 1, 0))
    with pytest.raises(MuxProtocolError, match="unknown type 9"):
        FrameReader(Recorder()).feed(frames.header(0, 9, 0, 1, 0))


# -- sessions over real TLS ---------------------------------------------------------------


@dataclass(frozen=True)
class Files:
    cert_path: Path
    key_path: Path
    bundle_path: Path


@pytest.fixture
def tls(tmp_path):
    ca = make_ca(tmp_path)
    server = make_leaf(tmp_path, ca, "gateway")
    client = make_leaf(tmp_path, ca, "client", uri="spiffe://fed/cluster/c2/ns/default/sa/default")
    return (Files(server.cert, server.key, server.ca), Files(client.cert, client.key, client.ca))


class Peer(asyncio.BaseProtocol):
    """A stream's protocol that records what happens to it."""

    def __init__(self, *, echo: bool = False, keep_open_on_eof: bool = True) -> None:
        self.transport: asyncio.Transport | None = None
        self.data = bytearray()
        self.echo = echo
        self.keep_open = keep_open_on_eof
        self.eof = False
        self.writing = ["resumed"]
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data
        if self.echo:
            self.transport.write(bytes(data))

    def eof_received(self):
        self.eof = True
        return self.keep_open

    def pause_writing(self):
        self.writing.append("paused")

    def resume_writing(self):
        self.writing.append("resumed")

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


class MuxServer:
    """A TLS listener on loopback whose connections are server-side mux sessions."""

    def __init__(self, files: Files, make_peer=lambda: Peer(echo=True, keep_open_on_eof=False)) -> None:
        self.files = files
        self.make_peer = make_peer
        self.peers: list[Peer] = []
        self.sessions: list[MuxSession] = []

    async def __aenter__(self) -> "MuxServer":
        loop = asyncio.get_running_loop()

        def session():
            s = MuxSession(new_stream=self._peer, max_streams=4)
            self.sessions.append(s)
            return s

        self.server = await loop.create_server(session, "127.0.0.1", 0,
                                               ssl=server_context(self.files, alpn=(MUX_ALPN,)))
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def _peer(self) -> Peer:
        peer = self.make_peer()
        self.peers.append(peer)
        return peer

    async def __aexit__(self, *exc) -> None:
        for s in self.sessions:
            s.abort()
        self.server.close()
        await self.server.wait_closed()


async def until(check, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def mux_client_context(files: Files) -> ssl.SSLContext:
    ctx = client_context(files, alpn=(MUX_ALPN,))
    assert isinstance(ctx, MuxClientContext)
    return ctx


async def open_stream(connector: MuxConnector, server: MuxServer, files: Files, peer: Peer | None = None) -> Peer:
    peer = peer or Peer()
    return await connector.open(("k",), "127.0.0.1", server.port, mux_client_context(files), "localhost", peer)


async def test_streams_share_one_tls_connection_and_keep_their_bytes_apart(tls):
    server_files, client_files = tls
    connector = MuxConnector()
    async with MuxServer(server_files) as server:
        peers = await asyncio.gather(*(open_stream(connector, server, client_files) for _ in range(3)))
        for n, peer in enumerate(peers):
            peer.transport.write(b"stream %d " % n * 50)
        await until(lambda: all(len(p.data) == len(b"stream %d " % n * 50) for n, p in enumerate(peers)))
        assert [bytes(p.data) for p in peers] == [b"stream %d " % n * 50 for n in range(3)]
        assert connector.dialed == 1 and len(server.sessions) == 1 and len(server.peers) == 3
        # a stream tells of its connection's peer, but has no socket to set options on (they would hit every stream)
        server_side = server.peers[0].transport
        assert server_side.get_extra_info("peercert")["subjectAltName"] and server_side.get_extra_info("peername")
        assert server_side.get_extra_info("socket") is None and peers[0].transport.get_extra_info("socket", 7) == 7
        # a half-close reaches the other side as EOF; the stream ends when both sides closed
        peers[0].transport.write_eof()
        await until(lambda: server.peers[0].eof)
        server.peers[0].transport.close()
        assert await asyncio.wait_for(server.peers[0].lost, 5) is None
        await until(lambda: peers[0].eof)
        peers[0].transport.close()
        await until(lambda: len(server.sessions[0].streams) == 2)
    connector.close()


async def test_a_slow_reader_holds_one_window_and_the_writer_is_paused_until_it_reads(tls):
    server_files, client_files = tls
    connector = MuxConnector()
    async with MuxServer(server_files, make_peer=Peer) as server:
        client = await open_stream(connector, server, client_files)
        client.transport.write(b"x")
        await until(lambda: server.peers and server.peers[0].data == b"x")
        reader = server.peers[0]
        reader.transport.pause_reading()
        body = bytes(range(256)) * 4096  # 1 MiB: four windows
        client.transport.write(body)
        await asyncio.sleep(0.3)
        assert len(reader.data) == 1  # paused: nothing delivered
        # what crossed is at most the window the reader granted; the rest waits with the writer
        assert client.transport.get_write_buffer_size() >= len(body) - INITIAL_WINDOW
        assert client.writing[-1] == "paused"
        reader.transport.resume_reading()
        await until(lambda: len(reader.data) == 1 + len(body))
        assert hashlib.sha256(reader.data[1:]).digest() == hashlib.sha256(body).digest()
        await until(lambda: client.writing[-1] == "resumed")
        assert client.transport.get_write_buffer_size() == 0
    connector.close()


async def test_a_reset_stream_ends_alone(tls):
    server_files, client_files = tls
    connector = MuxConnector()
    async with MuxServer(server_files) as server:
        a, b = [await open_stream(connector, server, client_files) for _ in range(2)]
        a.transport.write(b"a")
        b.transport.write(b"b")
        await until(lambda: len(server.peers) == 2 and a.data == b"a" and b.data == b"b")
        a.transport.abort()
        assert await asyncio.wait_for(a.lost, 5) is None
        lost = await asyncio.wait_for(server.peers[0].lost, 5)
        assert isinstance(lost, StreamReset)
        b.transport.write(b" still")
        await until(lambda: b.data == b"b still")
        assert not b.lost.done() and len(server.sessions) == 1
    connector.close()


class NotReading(Peer):
    def connection_made(self, transport):
        super().connection_made(transport)
        transport.pause_reading()


async def raw_mux_client(server: MuxServer, files: Files, first: bytes
                         ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Recorder, FrameReader]:
    """A TLS connection that agreed to the mux and sent `first`, with what reads the frames back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=mux_client_context(files),
                                                   server_hostname="localhost")
    writer.write(first)
    seen = Recorder()
    return reader, writer, seen, FrameReader(seen)


async def test_a_peer_that_writes_beyond_the_window_gets_its_stream_reset(tls):
    server_files, client_files = tls
    async with MuxServer(server_files, make_peer=NotReading) as server:
        reader, writer, seen, frame_reader = await raw_mux_client(
            server, client_files, frames.data_frame(1, SYN, b"y" * (INITIAL_WINDOW + 1)))
        while not any(e[0] == "window" and e[2] & RST for e in seen.events):
            frame_reader.feed(await asyncio.wait_for(reader.read(4096), 5))
        lost = await asyncio.wait_for(server.peers[0].lost, 5)
        assert isinstance(lost, StreamReset) and "1 bytes beyond the stream's window" in str(lost)
        assert server.peers[0].data == b""  # paused: what it held was one window, then dropped
        # the session lives on: another stream works
        writer.write(frames.data_frame(3, SYN, b"z"))
        await until(lambda: len(server.peers) == 2)
        server.peers[1].transport.resume_reading()
        await until(lambda: server.peers[1].data == b"z")
        writer.close()


async def test_garbage_ends_the_session_with_a_protocol_error_and_its_streams_hear_why(tls):
    server_files, client_files = tls
    async with MuxServer(server_files, make_peer=Peer) as server:
        reader, writer, seen, frame_reader = await raw_mux_client(
            server, client_files, frames.data_frame(1, SYN, b"hello") + b"GET / HTTP/1.1\r\n\r\n")
        while data := await asyncio.wait_for(reader.read(4096), 5):
            frame_reader.feed(data)
        assert ("go away", frames.GO_AWAY_PROTOCOL_ERROR) in seen.events
        lost = await asyncio.wait_for(server.peers[0].lost, 5)
        assert "mux protocol error" in str(lost) and "version" in str(lost)
        writer.close()


async def test_a_session_going_away_finishes_its_streams_and_new_ones_get_a_new_session(tls):
    server_files, client_files = tls
    connector = MuxConnector()
    async with MuxServer(server_files) as server:
        first = await open_stream(connector, server, client_files)
        first.transport.write(b"1")
        await until(lambda: first.data == b"1")
        server.sessions[0].go_away()
        await until(lambda: connector.sessions() == [] or not connector.sessions()[0].can_open)
        second = await open_stream(connector, server, client_files)
        second.transport.write(b"2")
        await until(lambda: second.data == b"2")
        assert connector.dialed == 2 and len(server.sessions) == 2
        first.transport.write(b" more")  # the old session still carries its stream
        await until(lambda: first.data == b"1 more")
        first.transport.close()
        await until(lambda: server.sessions[0].closed)  # its last stream ended
    connector.close()


async def test_a_full_session_is_joined_by_a_new_one(tls):
    server_files, client_files = tls
    connector = MuxConnector(max_streams=2)
    async with MuxServer(server_files) as server:
        peers = [await open_stream(connector, server, client_files) for _ in range(3)]
        for peer in peers:
            peer.transport.write(b"hi")
        await until(lambda: all(p.data == b"hi" for p in peers))
        assert connector.dialed == 2
        # the full one said Go Away (it opens no more streams; the server read that before the echoes),
        # yet both sides go on with the streams it has
        assert not any(p.transport.is_closing() for p in server.peers[:2] + peers[:2])
        peers[0].transport.write(b" again")
        await until(lambda: peers[0].data == b"hi again")
    connector.close()


async def test_an_idle_session_closes(tls):
    server_files, client_files = tls
    connector = MuxConnector(idle_timeout_s=0.1)
    async with MuxServer(server_files) as server:
        peer = await open_stream(connector, server, client_files)
        peer.transport.write(b"x")
        await until(lambda: peer.data == b"x")
        session = connector.sessions()[0]
        peer.transport.close()
        await until(lambda: session.closed)
        assert connector.sessions() == []
    connector.close()


async def test_a_server_without_the_mux_protocol_is_refused_by_name(tls):
    server_files, client_files = tls
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                      ssl=server_context(server_files, alpn=("http/1.1",)))
    try:
        with pytest.raises(DialFailed, match=f"did not agree to {MUX_ALPN}"):
            await MuxConnector().open(("k",), "127.0.0.1", server.sockets[0].getsockname()[1],
                                      mux_client_context(client_files), "localhost", Peer())
    finally:
        server.close()


# -- the outbound proxy's HTTP/1.1 to a gateway ------------------------------------------


async def sha_of_body(req: Request, resp: Response) -> None:
    body = await req.body.read_all(16 << 20)
    resp.send(200, [(b"content-type", b"text/plain")], hashlib.sha256(body).hexdigest().encode() + b"\n")


async def big_answer(req: Request, resp: Response) -> None:
    await req.body.read_all(1 << 20)
    resp.send(200, [(b"content-type", b"application/octet-stream")], bytes(range(256)) * 8192)  # 2 MiB


async def test_outbound_requests_to_a_gateway_ride_one_mux_session(tls):
    server_files, client_files = tls
    async with upstreams(sha_of_body, big_answer) as (shas, big):
        handshakes = []
        gw_ctx = server_context(server_files, alpn=(MUX_ALPN, "http/1.1"))
        gw_ctx.sni_callback = lambda *args: handshakes.append(1)
        gw_cfg = config("c1", gateway=[
            gateway_rule("/c1/sha", "ns", "sha", 80, [endpoint(shas.port, "c1")]),
            gateway_rule("/c1/big", "ns", "big", 80, [endpoint(big.port, "c1")]),
        ])
        async with data_plane("c1", gw_cfg, outbound=False, gateway=True, gateway_ssl=gw_ctx) as c1:
            gw_port = c1.servers["gateway"].address[1]
            out_cfg = config("c2", [
                route("sha", "ns", 80, [[("c1", [endpoint(gw_port, "c1", gateway=True, prefix="/c1/sha")])]]),
                route("big", "ns", 80, [[("c1", [endpoint(gw_port, "c1", gateway=True, prefix="/c1/big")])]]),
            ])
            ctx = mux_client_context(client_files)
            async with data_plane("c2", out_cfg, tls_for=lambda ep: (ctx if ep.gateway else None, "localhost")) as c2:
                upload = bytes(range(256)) * 12288  # 3 MiB: many windows
                async with aiohttp.ClientSession() as s:
                    async def post(n: int) -> str:
                        async with s.post(url(c2, "outbound", f"/{n}"), data=upload,
                                          headers={"Host": "sha.ns:80"}) as r:
                            assert r.status == 200
                            return await r.text()

                    async def get() -> bytes:
                        async with s.get(url(c2, "outbound", "/"), headers={"Host": "big.ns:80"}) as r:
                            assert r.status == 200
                            return await r.read()

                    answers = await asyncio.gather(*(post(n) for n in range(4)), *(get() for _ in range(4)))
                assert answers[:4] == [hashlib.sha256(upload).hexdigest() + "\n"] * 4
                assert answers[4:] == [bytes(range(256)) * 8192] * 4
                assert c2.pools.mux.dialed == 1 and len(handshakes) == 1  # one TLS connection for 8 exchanges
                assert c2.pools.opened >= 2  # over several streams


class Failing(Peer):
    def data_received(self, data):
        if bytes(data) == b"boom":
            raise RuntimeError("boom")
        super().data_received(data)


async def test_a_protocol_that_fails_resets_its_stream_only(tls):
    server_files, client_files = tls
    connector = MuxConnector()
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
    async with MuxServer(server_files, make_peer=lambda: Failing(echo=True)) as server:
        a, b = [await open_stream(connector, server, client_files) for _ in range(2)]
        a.transport.write(b"boom")
        assert isinstance(await asyncio.wait_for(a.lost, 5), StreamReset)
        assert reported and "protocol.data_received() failed" in reported[0]
        b.transport.write(b"fine")
        await until(lambda: b.data == b"fine")
        assert len(server.sessions) == 1 and not server.sessions[0].closed
    loop.set_exception_handler(None)
    connector.close()


async def test_a_gateway_that_stops_finishes_what_its_sessions_carry_then_closes_them(tls):
    server_files, client_files = tls

    async def slow(req: Request, resp: Response) -> None:
        await asyncio.sleep(0.4)
        resp.send(200, [(b"content-type", b"text/plain")], b"slow\n")

    async with upstreams(slow) as (up,):
        gw_cfg = config("c1", gateway=[gateway_rule("/c1/slow", "ns", "slow", 80, [endpoint(up.port, "c1")])])
        gw_ctx = server_context(server_files, alpn=(MUX_ALPN,))
        async with data_plane("c1", gw_cfg, outbound=False, gateway=True, gateway_ssl=gw_ctx) as c1:
            out_cfg = config("c2", [route("slow", "ns", 80, [[("c1", [
                endpoint(c1.servers["gateway"].address[1], "c1", gateway=True, prefix="/c1/slow")])]])])
            ctx = mux_client_context(client_files)
            async with data_plane("c2", out_cfg, tls_for=lambda ep: (ctx if ep.gateway else None, "localhost")) as c2, \
                    aiohttp.ClientSession() as s:
                async def get() -> tuple[int, str]:
                    async with s.get(url(c2, "outbound", "/"), headers={"Host": "slow.ns:80"}) as r:
                        return r.status, await r.text()

                in_flight = asyncio.ensure_future(asyncio.gather(get(), get()))
                await until(lambda: len(up.targets) == 2)
                await c1.stop(grace_s=5.0)  # drains: the session says Go Away, its streams finish
                assert await in_flight == [(200, "slow\n")] * 2
                await until(lambda: c2.pools.mux.sessions() == [])


async def test_a_peer_that_stops_answering_ends_the_session_by_keepalive(tls):
    server_files, client_files = tls
    loop = asyncio.get_running_loop()
    silent = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,  # takes the bytes, never answers
                                      ssl=server_context(server_files, alpn=(MUX_ALPN,)))
    connector = MuxConnector(keepalive_s=0.2, keepalive_timeout_s=0.2)
    try:
        peer = await connector.open(("k",), "127.0.0.1", silent.sockets[0].getsockname()[1],
                                    mux_client_context(client_files), "localhost", Peer())
        peer.transport.write(b"hello?")
        lost = await asyncio.wait_for(peer.lost, 3)
        assert "did not answer a keepalive ping within 0.2 s" in str(lost)
        assert connector.sessions() == []
    finally:
        silent.close()
        connector.close()


async def test_a_quiet_session_with_a_live_peer_outlives_many_keepalive_periods(tls):
    server_files, client_files = tls
    connector = MuxConnector(keepalive_s=0.05, keepalive_timeout_s=0.2)
    async with MuxServer(server_files) as server:
        peer = await open_stream(connector, server, client_files)
        await asyncio.sleep(0.6)  # a dozen pings, each answered
        assert not peer.lost.done() and len(connector.sessions()) == 1
        peer.transport.write(b"still here")
        await until(lambda: peer.data == b"still here")
    connector.close()
