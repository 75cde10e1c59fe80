"""The HTTP/1.1 server engine on real loopback sockets: keep-alive, pipelining,
framing, 100-continue, limits and timeouts, flow control."""
from __future__ import annotations

import asyncio
import contextvars
import hashlib

import aiohttp
import pytest

from proxy.config import Limits
from proxy.http1.flow import HIGH_WATER
from proxy.http1.server import HttpServer, Request, Response
from proxy.samples.echo import serve_echo
from tests.proxy.http_support import read_head, read_response, reset, text_handler


@pytest.fixture
async def echo():
    server = await serve_echo("127.0.0.1", 0, message="hello")
    yield server.address[1]
    await server.shutdown(grace_s=0.5)


async def serve(handler, **limits) -> HttpServer:
    return await HttpServer(handler, limits=Limits(**limits)).listen("127.0.0.1", 0)


async def test_keep_alive_serves_many_requests_on_one_connection(echo):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo)
    for i in range(5):
        writer.write(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        status, headers, body = await read_response(reader)
        assert (status, body) == (200, b"hello\n")
        assert "connection" not in headers
    writer.close()


async def test_pipelined_requests_are_answered_in_order():
    async def handler(req: Request, resp: Response) -> None:
        if req.target == b"/slow":
            await asyncio.sleep(0.1)
        resp.send(200, [], req.target + await req.body.read_all(1000))

    server = await serve(handler)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /post HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 5\r\n\r\n+body"
                     b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n")
        bodies = [(await read_response(reader))[2] for _ in range(3)]
        assert bodies == [b"/slow", b"/post+body", b"/last"]
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_chunked_request_body_is_echoed_chunked(echo):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"  # length unknown: the response is chunked too
    assert body == b"hello world"
    # the connection is still good after a chunked exchange
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_response(reader))[2] == b"hello\n"
    writer.close()


async def test_content_length_body_is_echoed_with_content_length(echo):
    async with aiohttp.ClientSession() as s:
        async with s.post(f"http://127.0.0.1:{echo}/", data=b"x" * 1000) as r:
            assert r.headers["Content-Length"] == "1000"
            assert await r.read() == b"x" * 1000


async def test_head_has_length_but_no_body_and_keeps_the_connection(echo):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo)
    writer.write(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = await read_response(reader, head_request=True)
    assert status == 200 and headers["content-length"] == "6"
    status, _, body = await read_response(reader)  # the next bytes are the GET's answer, not a HEAD body
    assert (status, body) == (200, b"hello\n")
    writer.close()


async def test_expect_100_continue_is_sent_when_the_body_is_read(echo):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    status, _ = await read_head(reader)
    assert status == 100
    writer.write(b"ping")
    status, _, body = await read_response(reader)
    assert (status, body) == (200, b"ping")
    writer.close()


async def test_expect_100_continue_refused_without_reading_closes():
    async def refuse(req: Request, resp: Response) -> None:
        resp.send_text(413, "too big")

    server = await serve(refuse)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert status == 413 and headers["connection"] == "close" and body == b"too big\n"
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_connection_close_is_honoured(echo):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert (status, body, headers["connection"]) == (200, b"hello\n", "close")
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_http10_client_without_keep_alive_is_closed(echo):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 2)
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"\r\n\r\nhello\n")
    writer.close()


async def good_client_round(port: int) -> bytes:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{port}/") as r:
            return await r.read()


async def test_garbage_gets_400_and_others_are_served(echo):
    good_reader, good_writer = await asyncio.open_connection("127.0.0.1", echo)
    bad_reader, bad_writer = await asyncio.open_connection("127.0.0.1", echo)
    bad_writer.write(b"\x16\x03\x01 this is not http\r\n\r\n")
    status, headers, body = await read_response(bad_reader)
    assert status == 400 and headers["connection"] == "close" and body.startswith(b"malformed request")
    assert await asyncio.wait_for(bad_reader.read(), 2) == b""
    good_writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # an open keep-alive connection goes on
    assert (await read_response(good_reader))[2] == b"hello\n"
    assert await good_client_round(echo) == b"hello\n"
    good_writer.close()
    bad_writer.close()


async def test_slow_head_gets_408_while_others_are_served():
    async def ok(req: Request, resp: Response) -> None:
        resp.send(200, [], b"ok")

    server = await serve(ok, header_timeout_s=0.3)
    port = server.address[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(3):  # served while the slow client dawdles
            assert await good_client_round(port) == b"ok"
        status, headers, body = await read_response(reader)
        assert status == 408 and headers["connection"] == "close" and b"request head not received" in body
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_too_many_headers_get_431_while_others_are_served(echo):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    status, _, body = await read_response(reader)
    assert status == 431 and b"more than 100 request header fields" in body
    assert await good_client_round(echo) == b"hello\n"
    writer.close()


async def test_oversized_header_gets_431(echo):
    for head in (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",  # one read
        None,  # spread over many reads, never finished
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", echo)
        if head is not None:
            writer.write(head)
        else:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(40):
                writer.write(b"a" * 1000)
                await writer.drain()  # the server keeps reading (and dropping) after its answer
                await asyncio.sleep(0.005)
        status, _, body = await read_response(reader)
        assert status == 431 and b"larger than 16384 bytes" in body
        writer.close()
    assert await good_client_round(echo) == b"hello\n"


async def test_idle_keep_alive_connection_is_closed():
    async def ok(req: Request, resp: Response) -> None:
        resp.send(200, [], b"ok")

    server = await serve(ok, idle_timeout_s=0.2)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(reader))[2] == b"ok"
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed after 0.2 s of silence
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_slow_request_body_gets_408():
    async def consume(req: Request, resp: Response) -> None:
        await req.body.read_all(1 << 20)
        resp.send(200, [], b"ok")

    server = await serve(consume, request_timeout_s=0.3)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        status, _, body = await read_response(reader)
        assert status == 408 and b"request body not received within 0.3 s" in body
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_request_body_is_streamed_with_backpressure():
    """While the handler does not read, the server stops reading the socket: the
    client's send buffer fills up instead of the server's memory."""
    may_read = asyncio.Event()
    peak = 0

    async def slow_reader(req: Request, resp: Response) -> None:
        nonlocal peak
        await may_read.wait()
        digest = hashlib.sha256()
        while chunk := await req.body.read():
            peak = max(peak, len(chunk))
            digest.update(chunk)
        resp.send(200, [], digest.hexdigest().encode())

    server = await serve(slow_reader)
    total = 32 * 1024 * 1024
    payload = bytes(range(256)) * (total // 256)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.transport.set_write_buffer_limits(high=64 * 1024)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        send = asyncio.create_task(_send(writer, payload))
        await asyncio.sleep(0.5)
        assert not send.done(), "the server took 32 MiB without anyone reading it"
        may_read.set()
        await asyncio.wait_for(send, 20)
        status, _, body = await read_response(reader, timeout=20)
        assert (status, body) == (200, hashlib.sha256(payload).hexdigest().encode())
        assert peak <= HIGH_WATER + 256 * 1024  # never more than the high-water mark plus a read or so
        writer.close()
    finally:
        await server.shutdown(0.5)


async def _send(writer: asyncio.StreamWriter, payload: bytes) -> None:
    view = memoryview(payload)
    for i in range(0, len(payload), 256 * 1024):
        writer.write(view[i:i + 256 * 1024])
        await writer.drain()


async def test_response_body_waits_for_a_slow_client():
    written = 0
    done = asyncio.Event()

    async def firehose(req: Request, resp: Response) -> None:
        nonlocal written
        resp.start(200, [], None)
        block = b"z" * 65536
        for _ in range(512):  # 32 MiB
            resp.write(block)
            written += len(block)
            if resp.paused:
                await resp.drain()
        resp.end()
        done.set()

    server = await serve(firehose)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1], limit=65536)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.5)
        assert written < 16 * 1024 * 1024, "the server buffered the whole response for a client that does not read"
        status, headers, body = await read_response(reader, timeout=20)
        assert status == 200 and len(body) == 32 * 1024 * 1024
        assert done.is_set()
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_handler_error_is_a_500_and_the_server_goes_on():
    async def broken(req: Request, resp: Response) -> None:
        if req.target == b"/boom":
            raise RuntimeError("kaput")
        resp.send(200, [], b"fine")

    server = await serve(broken)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{server.address[1]}/boom") as r:
                assert r.status == 500 and "RuntimeError: kaput" in await r.text()
            async with s.get(f"http://127.0.0.1:{server.address[1]}/") as r:
                assert await r.read() == b"fine"
    finally:
        await server.shutdown(0.5)


async def test_shutdown_lets_the_request_in_flight_finish():
    started = asyncio.Event()

    async def slow(req: Request, resp: Response) -> None:
        started.set()
        await asyncio.sleep(0.3)
        resp.send(200, [], b"finished")

    server = await serve(slow)
    port = server.address[1]
    async with aiohttp.ClientSession() as s:
        request = asyncio.create_task(s.get(f"http://127.0.0.1:{port}/"))
        await started.wait()
        stop = asyncio.create_task(server.shutdown(grace_s=3))
        r = await request
        assert r.status == 200 and await r.read() == b"finished"
        assert r.headers["Connection"] == "close"
        await stop
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_plain_function_handler_answers_later_through_callbacks():
    """A handler that returns None answers when it likes; the next request on the
    connection waits for that answer."""
    loop = asyncio.get_running_loop()

    def later(req: Request, resp: Response) -> None:
        delay = 0.1 if req.target == b"/first" else 0.0
        loop.call_later(delay, resp.send, 200, [], req.target)

    server = await serve(later)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        bodies = [(await read_response(reader))[2] for _ in range(2)]
        assert bodies == [b"/first", b"/second"]
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_a_client_leaving_cancels_a_callback_answer():
    cancelled = asyncio.Event()

    def never(req: Request, resp: Response) -> None:
        resp.on_cancel = cancelled.set

    server = await serve(never)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.1)
        assert not cancelled.is_set()
        reset(writer)
        await asyncio.wait_for(cancelled.wait(), 5)
    finally:
        await server.shutdown(0.5)


async def test_a_body_sent_with_its_head_is_whole_when_the_handler_starts():
    seen = []

    def check(req: Request, resp: Response) -> None:
        seen.append(req.body.complete)
        resp.send(200, [], req.body.take_complete() or b"")

    server = await serve(check)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        assert (await read_response(reader))[2] == b"hello"
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel")  # the rest comes later
        await asyncio.sleep(0.1)
        writer.write(b"lo")
        assert (await read_response(reader))[2] == b""
        assert seen == [True, False]
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_context_variables_a_handler_sets_stay_with_its_request():
    var: contextvars.ContextVar[bytes] = contextvars.ContextVar("var", default=b"unset")

    def handler(req: Request, resp: Response) -> None:
        before = var.get()
        var.set(req.target)
        resp.send(200, [], before)

    server = await serve(handler)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        for path in (b"/a", b"/b"):
            writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
            assert (await read_response(reader))[2] == b"unset"
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_a_half_closed_client_gets_its_answers_then_the_connection_closes():
    loop = asyncio.get_running_loop()

    def later(req: Request, resp: Response) -> None:
        loop.call_later(0.1, resp.send, 200, [], req.target)

    server = await serve(later)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.write_eof()
        assert [(await read_response(reader))[2] for _ in range(2)] == [b"/a", b"/b"]
        assert await asyncio.wait_for(reader.read(), 5) == b""  # then closed
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_end_of_input_while_an_answer_streams_is_a_client_gone():
    cancelled = asyncio.Event()

    def stream(req: Request, resp: Response) -> None:
        resp.on_cancel = cancelled.set
        resp.start(200, [], None)
        resp.write(b"first part")  # and more would follow

    server = await serve(stream)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_head(reader)
        writer.write_eof()  # the answer is streaming: the client has gone
        await asyncio.wait_for(cancelled.wait(), 5)
        writer.close()
    finally:
        await server.shutdown(0.5)


async def test_end_of_input_in_the_middle_of_a_body_drops_the_request():
    loop = asyncio.get_running_loop()
    server = await serve(text_handler("read it all"))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        writer.write_eof()  # a body cut short: no answer, closed at once
        started = loop.time()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert loop.time() - started < 1
        writer.close()
    finally:
        await server.shutdown(0.5)
