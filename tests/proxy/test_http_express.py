"""The express lane (proxy/http1/express.py): which bytes it takes, that what it takes
httptools reads alike, and that every way out of it -- an answer not whole in one read,
a stale pooled connection, a client that half-closes or pipelines, a server that
drains -- ends as the general path would. (Most GETs of the other proxy tests take it
too: balancing, retries, 504s, tap and the plain-mode headers are tested there.)"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.federation.tapfanin import CompactLines
from proxy.events import TapFilter
from proxy.http1.express import closing, forwardable, simple_get, whole_response
from proxy.http1.pool import Pools
from proxy.config import Endpoint, Limits
from proxy.http1.relay import _TAP_DEFERRED, TAP_DEFER_S, Destination, Relay, _ExpressCall
from proxy.http1.server import HttpServerProtocol, Request, Response
from proxy.metrics import Metrics
from proxy.routing.health import EndpointHealth
from proxy.tap import AnsweredRow, CompactEncoder, TapHub
from tests.proxy.http_support import (
    config, data_plane, endpoint, read_response, route, text_handler, upstreams,
)

GET = b"GET /p?q=1 HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\nUser-Agent: t\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nok\n"


def one_route(port: int, **extra) -> dict:
    return config("c1", [route("httpbin", "httpbin", 8080, [[("c1", [endpoint(port, "c1")])]], **extra)])


# -- the patterns -------------------------------------------------------------------------------


def test_a_simple_get_is_taken_with_its_target_and_host():
    m = simple_get(memoryview(GET), 8192, 100)
    assert m is not None and (m["target"], m["host"]) == (b"/p?q=1", b"httpbin.httpbin:8080")
    assert forwardable(memoryview(GET), m) == GET


def test_connection_keep_alive_is_taken_and_dropped():
    head = b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: a\r\nconnection:Keep-Alive \r\nX: 1\r\n\r\n"
    m = simple_get(head, 8192, 100)
    assert m is not None and forwardable(head, m) == b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # two Hosts
    b"GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n",  # none
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: timeout=5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nProxy-Authorization: x\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",  # absolute form
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n",  # something after the head
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # not all of the head
    b"GET / HTTP/1.1\r\nX: a\r\n b\r\nHost: a\r\n\r\n",  # obsolete line folding
    b"GET / HTTP/1.1\r\nX : a\r\nHost: a\r\n\r\n",  # space before the colon
    b"GET / HTTP/1.1\r\nX: a\nHost: a\r\n\r\n",  # bare LF
    b"GET / HTTP/1.1\r\nX: a\x00\r\nHost: a\r\n\r\n",  # NUL in a value
])
def test_what_the_general_path_must_read_is_left_to_it(head):
    assert simple_get(head, 8192, 100) is None


def test_header_names_are_matched_whole():
    head = b"GET / HTTP/1.1\r\nTeapot: 1\r\nHOST: a\r\nHostname: b\r\nConnectionless: c\r\n\r\n"
    assert simple_get(head, 8192, 100)["host"] == b"a"


def test_the_head_limits_apply():
    assert simple_get(GET, len(GET) - 1, 100) is None
    many = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(120)) + b"\r\n"
    assert simple_get(many, 8192, 100) is None and simple_get(many, 8192, 121) is not None


@pytest.mark.parametrize("response,status", [
    (OK, 200),
    (OK.replace(b"200 OK", b"503 Service Unavailable"), 503),
    (OK[:-1], 0),  # the body not all here
    (OK + b"x", 0),  # more than the body
    (OK.replace(b"content-length: 3", b"transfer-encoding: chunked"), 0),
    (OK.replace(b"content-type: text/plain", b"content-length: 3"), 0),  # two lengths
    (OK.replace(b"content-type: text/plain", b"Connection: close"), 0),
    (b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n", 0),
    (b"HTTP/1.1 100 Continue\r\n\r\n", 0),
    (b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", 0),
])
def test_a_whole_response_is_one_with_exactly_its_body(response, status):
    body = len(response) - response.index(b"\r\n\r\n") - 4 if status else 0
    assert whole_response(response) == (status, body)
    assert whole_response(memoryview(response)) == (status, body)


def test_closing_adds_connection_close_to_the_head():
    assert closing(OK) == OK.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n")


class _Parsed:
    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


_NAMES = st.sampled_from([b"Host", b"host", b"HOST", b"Content-Length", b"Transfer-Encoding", b"Connection",
                          b"X-A", b"User-Agent", b"Accept", b"Te", b"Upgrade", b"Expect", b"Bad Name", b""])
_VALUES = st.sampled_from([b"a", b" a.b:80 ", b"0", b"chunked", b"close", b"keep-alive", b" Keep-Alive\t", b"",
                           b"\x00", b"x\ry", b"\xe9"])
_LINES = st.lists(st.tuples(_NAMES, st.sampled_from([b":", b": ", b" : ", b":\t"]), _VALUES), max_size=5)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([b"GET", b"HEAD", b"get"]), st.sampled_from([b"/", b"/a?b", b"*", b"/a b", b"//x"]),
       st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2"]), _LINES, st.sampled_from([b"", b"\r\n", b"GET"]))
def test_what_the_express_lane_takes_httptools_reads_as_the_same_simple_get(method, target, version, lines, tail):
    head = b"%s %s %s\r\n" % (method, target, version) + b"".join(n + s + v + b"\r\n" for n, s, v in lines) \
        + b"\r\n" + tail
    m = simple_get(head, 8192, 100)
    if m is None:
        return
    parsed = _Parsed()
    parser = httptools.HttpRequestParser(parsed)
    parser.feed_data(head)
    assert parsed.complete and parser.get_method() == b"GET" and parser.get_http_version() == "1.1"
    assert parsed.url == m["target"] and parsed.body == b""
    assert [v.rstrip(b" \t") for n, v in parsed.headers if n == b"host"] == [m["host"]]  # (OWS is no value's)
    assert not {n for n, _ in parsed.headers} & {b"content-length", b"transfer-encoding", b"upgrade", b"expect", b"te"}
    assert {v.strip(b" \t").lower() for n, v in parsed.headers if n == b"connection"} <= {b"keep-alive"}
    passed_on = _Parsed()
    httptools.HttpRequestParser(passed_on).feed_data(forwardable(head, m))
    assert passed_on.headers == [(n, v) for n, v in parsed.headers if n != b"connection"]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([b"200 OK", b"404 Not Found", b"204 No Content", b"100 Continue", b"500 x", b"2000 x"]),
       st.lists(st.tuples(st.sampled_from([b"Content-Length", b"content-length", b"Transfer-Encoding",
                                           b"Connection", b"X-A", b"Bad Name"]),
                          st.sampled_from([b": ", b":"]), st.sampled_from([b"3", b" 3 ", b"chunked", b"x", b"-1"])),
                max_size=4),
       st.sampled_from([b"", b"ok\n", b"ok\nmore", b"ok"]))
def test_what_the_express_lane_calls_whole_httptools_reads_as_one_whole_response(status_line, lines, body):
    response = b"HTTP/1.1 " + status_line + b"\r\n" + b"".join(n + s + v + b"\r\n" for n, s, v in lines) \
        + b"\r\n" + body
    status, body_bytes = whole_response(response)
    if not status:
        return
    parsed = _Parsed()
    parser = httptools.HttpResponseParser(parsed)
    parser.feed_data(response)
    assert parsed.complete and parser.get_status_code() == status and body_bytes == len(parsed.body)
    assert len(response) - len(parsed.body) == response.index(b"\r\n\r\n") + 4  # the body ends the bytes


# -- ways out of it, through a proxy ------------------------------------------------------------------


async def raw_upstream(answer):
    """A TCP server that answers each request head with `answer(writer)`."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await answer(writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # (cancelled: a pooled connection still open when the test's loop ends)
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def test_the_express_lane_passes_a_head_on_as_it_came_but_for_keep_alive():
    heads: list[bytes] = []

    async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                heads.append(head)
                writer.write(OK)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(recording, "127.0.0.1", 0)
    async with server, data_plane("c1", one_route(server.sockets[0].getsockname()[1])) as plane:
        reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
        writer.write(b"GET /x HTTP/1.1\r\nhost:httpbin.httpbin:8080\r\nConnection: keep-alive\r\nX-A:1\r\n\r\n")
        assert (await read_response(reader))[::2] == (200, b"ok\n")
        writer.close()
    # the general path would pass `host: httpbin...` and `X-A: 1` on, re-encoded
    assert heads == [b"GET /x HTTP/1.1\r\nhost:httpbin.httpbin:8080\r\nX-A:1\r\n\r\n"]


async def test_an_answer_in_two_reads_is_taken_over_by_the_general_path():
    async def in_two(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhal")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"f!\n")

    server = await raw_upstream(in_two)
    async with server, data_plane("c1", one_route(server.sockets[0].getsockname()[1])) as plane:
        reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
        for _ in range(3):  # on one client and one upstream connection
            writer.write(GET)
            status, headers, body = await read_response(reader)
            assert (status, body) == (200, b"half!\n")
        writer.close()
        assert plane.pools.opened == 1
        assert 'status_code="200"' in plane.metrics.render()


async def test_a_chunked_answer_is_passed_on_by_the_general_path():
    async def chunked(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nab\n\r\n0\r\n\r\n")

    server = await raw_upstream(chunked)
    async with server, data_plane("c1", one_route(server.sockets[0].getsockname()[1])) as plane:
        reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
        writer.write(GET)
        status, headers, body = await read_response(reader)
        writer.close()
    assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"ab\n")


async def test_a_pooled_connection_the_upstream_closed_is_replaced_without_an_error():
    async def once(writer: asyncio.StreamWriter) -> None:
        writer.write(OK)
        await writer.drain()
        writer.close()  # no keep-alive, though the response does not say so

    server = await raw_upstream(once)
    async with server, data_plane("c1", one_route(server.sockets[0].getsockname()[1])) as plane:
        reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
        for _ in range(4):
            writer.write(GET)
            assert (await read_response(reader))[::2] == (200, b"ok\n")
            await asyncio.sleep(0.05)  # the close reaches the pool, or not: both must work
        writer.close()
        assert plane.pools.opened == 4
        (snap,) = plane.health.snapshot()
        assert (snap["failures"], snap["inflight"]) == (0, 0)


async def test_a_request_pipelined_behind_an_express_one_is_answered_after_it():
    async def slow_first(req: Request, resp: Response) -> None:
        await asyncio.sleep(0.2 if req.target == b"/1" else 0)
        resp.send(200, [], req.target)

    async with upstreams(slow_first) as (up,), data_plane("c1", one_route(up.port)) as plane:
        reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
        writer.write(GET.replace(b"/p?q=1", b"/1"))
        await asyncio.sleep(0.05)  # the first is on its way
        writer.write(GET.replace(b"/p?q=1", b"/2"))
        answers = [(await read_response(reader))[2] for _ in range(2)]
        writer.close()
    assert answers == [b"/1", b"/2"]


async def test_a_client_that_half_closes_after_its_get_gets_the_answer():
    async with upstreams(text_handler("a")) as (up,), data_plane("c1", one_route(up.port)) as plane:
        reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
        writer.write(GET)
        writer.write_eof()
        everything = await asyncio.wait_for(reader.read(), 5)  # then the proxy closes
        writer.close()
    assert everything.startswith(b"HTTP/1.1 200 OK\r\n") and everything.endswith(b"\r\n\r\na\n")


async def test_an_answer_while_the_server_drains_says_the_connection_closes():
    async def slow(req: Request, resp: Response) -> None:
        await asyncio.sleep(0.3)
        resp.send(200, [], b"late")

    async with upstreams(slow) as (up,), data_plane("c1", one_route(up.port)) as plane:
        reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
        writer.write(GET)
        await asyncio.sleep(0.1)
        plane.servers["outbound"].close()  # stop accepting, finish what is under way
        status, headers, body = await read_response(reader)
        assert (status, body, headers.get("connection")) == (200, b"late", "close")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_gateway_express_takes_the_caller_from_the_plain_hop_and_drops_those_headers():
    async with upstreams(text_handler("ok")) as (up,):
        gw = config("c1", gateway=[{"path": "/c1/httpbin-mesh", "path_type": "Prefix", "namespace": "httpbin",
                                    "service": "httpbin", "port": 8080, "endpoints": [endpoint(up.port, "c1")],
                                    "allowed_clusters": ["c2"]}])
        async with data_plane("c1", gw, outbound=False, gateway=True) as plane:
            reader, writer = await asyncio.open_connection(*plane.servers["gateway"].address)
            for who in (b"c2", b"c3"):
                writer.write(b"GET /c1/httpbin-mesh/x HTTP/1.1\r\nHost: gw\r\nX-Meshtui-Src-Cluster: " + who
                             + b"\r\nx-meshtui-src-sa: curl\r\nX-Keep: 1\r\n\r\n")
                answers = await read_response(reader)
                assert answers[0] == (200 if who == b"c2" else 403)
            writer.close()
    assert up.targets == [b"/x"]
    assert [n.lower() for n, _ in up.headers[0]] == [b"host", b"x-keep"]


# -- tap on the express lane: deferred until the answer, or until TAP_DEFER_S ----------------------


@contextlib.asynccontextmanager
async def tapped_plane_and_client(answer):
    """An outbound proxy in front of `raw_upstream(answer)`, a tap subscription, and a client
    connection whose first GET has opened the pooled upstream connection (so the next takes
    the express lane all the way); that first GET's events are read and dropped."""
    server = await raw_upstream(answer)
    async with server, data_plane("c1", one_route(server.sockets[0].getsockname()[1])) as plane:
        sub = plane.tap.subscribe(TapFilter())
        reader, writer = await asyncio.open_connection(*plane.servers["outbound"].address)
        try:
            writer.write(GET)
            await read_response(reader)
            assert [e.kind for e in await events_of(sub, 3)] == ["request_init", "response_init", "response_end"]
            yield plane, sub, reader, writer
        finally:
            writer.close()


async def events_of(sub, n: int) -> list:
    return [await asyncio.wait_for(sub.__anext__(), 5) for _ in range(n)]


async def test_a_tapped_express_request_answered_at_once_is_published_whole_when_answered():
    async def at_once(writer: asyncio.StreamWriter) -> None:
        writer.write(OK)

    async with tapped_plane_and_client(at_once) as (plane, sub, reader, writer):
        relay = plane.servers["outbound"].express.__self__.relay  # (the OutboundProxy's)
        sent = time.time()
        writer.write(GET)
        assert sub.take() == deque()  # nobody is told it began before its answer came
        assert (await read_response(reader))[::2] == (200, b"ok\n")
        received = time.time()
        items = sub.take()
        assert [type(item) for item in items] == [AnsweredRow]  # its three events as one row (TapHub.whole)
        parse = CompactLines()  # read as the controller reads the stream
        init, head, end = [e for line in CompactEncoder()(items).splitlines() for e in parse(line)]
        assert (init.kind, head.kind, end.kind) == ("request_init", "response_init", "response_end")
        assert init.id == head.id == end.id and (init.method, init.path) == ("GET", "/p?q=1")
        assert (head.status, end.status, end.bytes) == (200, 200, 3)
        assert end.duration_ms == head.latency_ms >= end.latency_ms > 0
        assert sent - 0.001 <= init.ts <= head.ts == end.ts <= received + 0.001
        await asyncio.sleep(TAP_DEFER_S * 3)  # the timer comes, finds it answered, and stops
        assert relay._deferring == set() and relay._deferred_timer is None and sub.take() == deque()


async def test_a_tapped_express_request_that_waits_is_told_of_before_its_answer():
    async def late(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.4)
        writer.write(OK)

    async with tapped_plane_and_client(late) as (plane, sub, reader, writer):
        sent = time.time()
        writer.write(GET)
        (init,) = await events_of(sub, 1)
        told = time.time()
        assert init.kind == "request_init" and told - sent < 0.3  # long before the answer
        assert abs(init.ts - sent) < 0.05 and told - init.ts >= TAP_DEFER_S * 0.9  # when it began, told later
        assert (await read_response(reader))[::2] == (200, b"ok\n")
        head, end = await events_of(sub, 2)
        assert (head.kind, end.kind, head.id, end.id) == ("response_init", "response_end", init.id, init.id)
        assert head.latency_ms >= 390 and end.bytes == 3


async def test_the_tap_timer_publishes_the_late_calls_and_comes_back_a_whole_period_later():
    relay = Relay(cluster="c1", direction="outbound", health=EndpointHealth(), metrics=Metrics("c1"), tap=TapHub(),
                  pools=Pools())
    sub = relay.tap.subscribe(TapFilter())
    ep = Endpoint("127.0.0.1", 9, "c1")
    dest = Destination(namespace="ns", service="svc", choose=lambda tried: ep, timeout_s=1.0, authority="svc.ns",
                       src_cluster="c1")

    def deferred(path: bytes, waited_s: float) -> tuple[HttpServerProtocol, _ExpressCall]:
        """A client connection with an express call under way, begun `waited_s` ago."""
        proto = HttpServerProtocol(lambda req, resp: None, Limits(), set())
        call = _ExpressCall(relay, proto, dest, b"", path, path, ep, relay.pools.key(ep), False, b"")
        call._tap = _TAP_DEFERRED
        call._started = time.perf_counter() - waited_s
        proto.express_started(call)
        return proto, call

    (late, late_call), (answered, _), (idle, _), (nearly, nearly_call), (young, young_call) = (
        deferred(b"/late", TAP_DEFER_S * 5), deferred(b"/answered", TAP_DEFER_S * 2), deferred(b"/idle", 1.0),
        deferred(b"/nearly", TAP_DEFER_S * 0.95), deferred(b"/young", 0.0))
    answered.express_call._tap = None  # answered, and the connection's next request begun
    idle._express_call = None  # answered, no request since
    relay._deferring = {late, answered, idle, nearly, young}
    began = time.time() - TAP_DEFER_S * 5
    relay._open_deferred()
    (init,) = await events_of(sub, 1)
    assert (init.kind, init.path) == ("request_init", "/late") and abs(init.ts - began) < TAP_DEFER_S * 2  # its start
    assert late_call._tap is not _TAP_DEFERRED
    assert sub.take() == deque()  # nothing of the others
    assert (nearly_call._tap, young_call._tap) == (_TAP_DEFERRED, _TAP_DEFERRED)
    assert relay._deferring == {nearly, young}
    # not at `nearly`'s due time, a fraction of a millisecond away (which uvloop would round to
    # nothing, coming back again and again): a whole period later
    loop = asyncio.get_running_loop()
    assert relay._deferred_timer.when() - loop.time() >= TAP_DEFER_S * 0.9
    relay._deferred_timer.cancel()


# -- the patterns against a line-by-line reading, over every combination of a set of lines -------

_HOP_NAMES = {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
_REQUEST_LINES = [b"Connection: keep-alive", b"X-Meshtui-Src-Cluster: c2", b"x-meshtui-src-sa: s", b"Accept: */*",
                  b"TE: x", b"Connection: close", b"X: 1", b"Content-Length: 0", b"Expect: 100-continue",
                  b"Proxy-Authorization: x", b"content-type: a", b"Keep-Alive: 5", b"Upgrade: h2c", b"Host: b"]
_RESPONSE_LINES = [b"content-type: text/plain", b"Connection: close", b"Content-Length: 3", b"content-length: 3",
                   b"Transfer-Encoding: chunked", b"X: y", b"TE: a", b"Keep-Alive: 1", b"Proxy-Foo: 1"]


def _fields(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    return [(name.lower(), value.strip()) for name, _, value in (line.partition(b":") for line in lines)]


def _reference_simple_get(lines: list[bytes]) -> bool | None:
    """Whether a GET /x with these header lines is forwarded changed (it says Connection:
    keep-alive), if the express lane may take it."""
    fields = _fields(lines)
    for name, value in fields:
        if (name in _HOP_NAMES or name.startswith(b"proxy-") or name in (b"content-length", b"expect")) \
                and (name, value.lower()) != (b"connection", b"keep-alive"):
            return None
    if [name for name, _ in fields].count(b"host") != 1:
        return None
    return (b"connection", b"keep-alive") in [(n, v.lower()) for n, v in fields]


def _lines_around_host():
    """Every (before, after) Host of up to two lines each; and, from some of the lines, of
    three before (which a broken repetition needs to show, see express._request_lines) and
    up to one after."""
    some = _REQUEST_LINES[:7] + _REQUEST_LINES[-1:]
    for before_n, after_max, lines in ((0, 2, _REQUEST_LINES), (1, 2, _REQUEST_LINES), (2, 2, _REQUEST_LINES),
                                       (3, 1, some)):
        for before in itertools.product(lines, repeat=before_n):
            for after_n in range(after_max + 1):
                yield from ((before, after) for after in itertools.product(lines, repeat=after_n))


def test_the_simple_get_pattern_takes_exactly_what_a_line_by_line_reading_allows():
    for before, after in _lines_around_host():
        lines = [*before, b"Host: a", *after]
        head = b"GET /x HTTP/1.1\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
        m = simple_get(head, 8192, 100)
        expected = _reference_simple_get(lines)
        assert (m is None) == (expected is None), head
        if m is not None:
            assert (m["target"], m["host"]) == (b"/x", b"a"), head
            assert (forwardable(head, m) != head) == expected, head


def test_the_whole_response_pattern_takes_exactly_what_a_line_by_line_reading_allows():
    for status in (b"200 OK", b"204 No Content", b"304 Not Modified", b"404 Not Found", b"500 X", b"199 X",
                   b"600 X", b"201 Created"):
        for lines in (ls for k in range(4) for ls in itertools.product(_RESPONSE_LINES, repeat=k)):
            fields = _fields(list(lines))
            lengths = [value for name, value in fields if name == b"content-length"]
            clean = not any(name in _HOP_NAMES or name.startswith(b"proxy-") for name, _ in fields)
            code = int(status[:3])
            for body in (b"", b"ok\n", b"abcd"):
                response = b"HTTP/1.1 " + status + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body
                whole = clean and len(lengths) == 1 and int(lengths[0]) == len(body) and 200 <= code < 600 \
                    and code not in (204, 304)
                assert whole_response(response) == ((code, len(body)) if whole else (0, 0)), response
