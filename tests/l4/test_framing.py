"""The framed mesh hop of an opaque TCP pipe (proxy/tcp/pipe.py) over real socket pairs: frames
split anywhere across reads, a half-close carried as an EOF frame both ways."""
from __future__ import annotations

import asyncio
import socket

import pytest

from proxy.tcp.connect import Held
from proxy.tcp.pipe import Pipe

pytestmark = pytest.mark.timeout(10)


def frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


async def joined():
    """(pipe, client stream, hop stream): the pipe's plain side `a` faces the client stream,
    its framed side `b` the hop stream."""
    loop = asyncio.get_running_loop()
    ends = []
    for _ in range(2):
        mine, theirs = socket.socketpair()
        transport, _ = await loop.connect_accepted_socket(Held, mine)
        ends.append((transport, await asyncio.open_connection(sock=theirs)))
    closed = asyncio.Event()
    pipe = Pipe(0, lambda _: closed.set())
    pipe.join(ends[0][0], ends[1][0], framed_b=True, held_b=frame(b"held "))
    return pipe, ends[0][1], ends[1][1], closed


async def test_frames_split_anywhere_and_half_closes_cross_both_ways():
    pipe, (c_reader, c_writer), (h_reader, h_writer), closed = await joined()
    wire = frame(b"hello ") + frame(b"world") + b"\x00\x00\x00\x00"
    for cut in (2, 5, 9, 13, 20, len(wire)):  # header halves, payload halves, the EOF frame in two
        h_writer.write(wire[:cut])
        wire = wire[cut:]
        await h_writer.drain()
        await asyncio.sleep(0.01)
    assert await asyncio.wait_for(c_reader.read(), 5) == b"held hello world"  # then EOF: passed as a half-close

    c_writer.write(b"answer")
    c_writer.write_eof()
    assert await asyncio.wait_for(h_reader.readexactly(14), 5) == frame(b"answer") + b"\x00\x00\x00\x00"
    await asyncio.wait_for(closed.wait(), 5)  # both ways done: the pipe closes
    assert (pipe.a_bytes, pipe.b_bytes) == (6, len(b"held hello world"))
    c_writer.close()
    h_writer.close()
