import asyncio
import json
import tracemalloc
from collections import deque

import pytest

from proxy.events import TapDropped, TapEvent, TapFilter
from controller.federation.tapfanin import CompactLines
from proxy.tap import ANSWERED, WHOLE_REQUEST, AnsweredRow, CompactEncoder, TapHub, TapRoute, ndjson


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def event(n: int = 0, **kw) -> TapEvent:
    base = dict(id=str(n), kind="request_init", direction="outbound", cluster="cluster-1",
                dst_cluster="cluster-3", dst_namespace="httpbin", dst_service="httpbin", method="GET",
                authority="httpbin.httpbin:8080", path="/get")
    return TapEvent(**{**base, **kw})


def drain(sub) -> list:
    """Everything queued now, without waiting for more."""
    async def take():
        out = []
        while True:
            try:
                out.append(await asyncio.wait_for(sub.__anext__(), 0.01))
            except (TimeoutError, StopAsyncIteration):
                return out
    return take()


async def test_active_only_while_somebody_subscribes():
    hub = TapHub()
    assert hub.active is False
    a = hub.subscribe(TapFilter())
    b = hub.subscribe(TapFilter())
    assert hub.active is True
    a.close()
    assert hub.active is True
    b.close()
    assert hub.active is False


async def test_filters_select_events():
    hub = TapHub()
    by_service = hub.subscribe(TapFilter(service="httpbin", method="post"))
    by_path = hub.subscribe(TapFilter(path_prefix="/api", kinds=("response_end",)))
    by_cluster = hub.subscribe(TapFilter(cluster="cluster-3"))
    hub.publish(event(1, method="POST"))
    hub.publish(event(2, dst_service="other", method="POST"))
    hub.publish(event(3, path="/api/v1", kind="response_end"))
    hub.publish(event(4, path="/api/v1"))
    hub.publish(event(5, cluster="cluster-2", dst_cluster="cluster-2"))
    assert [e.id for e in await drain(by_service)] == ["1"]
    assert [e.id for e in await drain(by_path)] == ["3"]
    assert [e.id for e in await drain(by_cluster)] == ["1", "2", "3", "4"]


async def test_a_waiting_subscriber_is_woken_by_publish():
    hub = TapHub()
    sub = hub.subscribe(TapFilter())
    reader = asyncio.ensure_future(sub.__anext__())
    await asyncio.sleep(0)
    assert not reader.done()
    hub.publish(event(1))
    assert (await asyncio.wait_for(reader, 1)).id == "1"


async def test_overflow_drops_and_reports_the_gap_in_order():
    hub = TapHub()
    sub = hub.subscribe(TapFilter(), buffer=3)
    for i in range(10):
        hub.publish(event(i))
    got = [await sub.__anext__() for _ in range(3)]
    hub.publish(event(10))
    got += await drain(sub)
    assert [g.id for g in got[:3]] == ["0", "1", "2"]
    assert got[3] == TapDropped(7)
    assert got[4].id == "10" and len(got) == 5
    assert sub.dropped_total == 7


async def test_gap_at_the_end_is_reported_once_the_queue_is_read():
    hub = TapHub()
    sub = hub.subscribe(TapFilter(), buffer=2)
    for i in range(5):
        hub.publish(event(i))
    got = await drain(sub)
    assert [type(g).__name__ for g in got] == ["TapEvent", "TapEvent", "TapDropped"]
    assert got[2].dropped == 3


async def test_rate_cap_counts_capped_events_as_dropped():
    clock = Clock()
    hub = TapHub(clock=clock)
    sub = hub.subscribe(TapFilter(max_rps=2))
    for i in range(5):  # burst of 2 allowed
        hub.publish(event(i))
    clock.t += 1.0  # two more tokens
    for i in range(5, 8):
        hub.publish(event(i))
    got = await drain(sub)
    assert [g.id if isinstance(g, TapEvent) else g.dropped for g in got] == ["0", "1", 3, "5", "6", 1]


async def test_unsubscribed_reader_stops_and_gets_nothing_more():
    hub = TapHub()
    sub = hub.subscribe(TapFilter())
    reader = asyncio.ensure_future(sub.__anext__())
    await asyncio.sleep(0)
    sub.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reader, 1)
    hub.publish(event(1))
    assert [e async for e in sub] == []
    assert hub.active is False


async def test_a_subscriber_that_never_reads_holds_bounded_memory():
    hub = TapHub()
    sub = hub.subscribe(TapFilter(), buffer=100)
    e = event(1)
    tracemalloc.start()
    try:
        for _ in range(100_000):
            hub.publish(e)
        grown, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grown < 20_000  # an unbounded queue of 100k references alone is ~800 kB
    assert sub.dropped_total == 100_000 - 100


async def test_publish_never_raises_on_a_malformed_event():
    hub = TapHub()
    sub = hub.subscribe(TapFilter(path_prefix="/api"))
    bad = event(1)
    bad.path = None  # type: ignore[assignment]
    hub.publish(bad)
    hub.publish(event(2, path="/api/x"))
    got = await drain(sub)
    assert got[0] == TapDropped(1) and got[1].id == "2"


def test_bad_subscription_settings_are_refused():
    hub = TapHub()
    with pytest.raises(ValueError, match="buffer"):
        hub.subscribe(TapFilter(), buffer=0)
    with pytest.raises(ValueError, match="max_rps"):
        hub.subscribe(TapFilter(max_rps=-1))
    assert hub.active is False


# -- exchanges: a request's events through its route ---------------------------------

def tap_route(service: str = "httpbin", **kw) -> TapRoute:
    fields = dict(id="cluster-1:outbound:", kind="request_init", direction="outbound", cluster="cluster-1",
                  src_cluster="cluster-1", dst_cluster="cluster-3", dst_namespace="httpbin", dst_service=service,
                  dst_endpoint="10.0.0.1:8080", authority=f"{service}.httpbin:8080", tls=True)
    return TapRoute(TapEvent(**{**fields, **kw}))


def exchange(hub: TapHub, route: TapRoute, n: int, method: bytes = b"GET", target: bytes = b"/get"):
    x = hub.open(route, n, method, target)
    if x is not None:
        x.phase("response_init", 200, 1.5)
        x.phase("response_end", 200, 1.5, 2.5, 42, "")
    return x


async def test_an_exchange_reads_as_three_events_and_encodes_as_their_dicts():
    hub = TapHub()
    events = hub.subscribe(TapFilter())
    stream = hub.subscribe(TapFilter())
    x = hub.open(tap_route(), 7, b"POST", b'/a "quoted"\npath?q=\xe9')
    x.phase("response_init", 503, 1.5)
    x.phase("response_end", 503, 1.5, 2.5, 0, "upstream said \"no\"\n", grpc_status=14)
    got = await drain(events)
    assert [e.kind for e in got] == ["request_init", "response_init", "response_end"]
    assert {e.id for e in got} == {"cluster-1:outbound:7"}
    init, head, end = got
    assert (init.method, init.path, init.dst_service, init.tls, init.status) == (
        "POST", '/a "quoted"\npath?q=\xe9', "httpbin", True, 0)
    assert (head.status, head.latency_ms, end.duration_ms, end.error, end.grpc_status) == (
        503, 1.5, 2.5, 'upstream said "no"\n', 14)
    assert init.ts <= head.ts <= end.ts
    lines = ndjson(stream.take()).splitlines()
    assert [json.loads(line) for line in lines] == [e.to_dict() for e in got]


async def test_route_filters_are_checked_again_only_when_subscribers_change():
    hub = TapHub()
    other = hub.subscribe(TapFilter(service="other"))
    route = tap_route()
    assert exchange(hub, route, 1) is None  # nobody selects this route
    late = hub.subscribe(TapFilter(namespace="httpbin", kinds=("response_end",)))
    assert exchange(hub, route, 2) is not None
    assert [(e.id, e.kind) for e in await drain(late)] == [("cluster-1:outbound:2", "response_end")]
    late.close()
    assert exchange(hub, route, 3) is None and hub.active
    assert await drain(other) == []


async def test_method_and_path_filters_are_checked_per_request():
    hub = TapHub()
    posts = hub.subscribe(TapFilter(method="post", kinds=("request_init",)))
    api = hub.subscribe(TapFilter(path_prefix="/api", kinds=("response_end",)))
    route = tap_route()
    exchange(hub, route, 1, b"GET", b"/api/v1")
    exchange(hub, route, 2, b"POST", b"/other")
    assert exchange(hub, route, 3, b"GET", b"/other") is None
    assert [(e.id, e.kind) for e in await drain(posts)] == [("cluster-1:outbound:2", "request_init")]
    assert [(e.id, e.kind) for e in await drain(api)] == [("cluster-1:outbound:1", "response_end")]


async def test_a_paused_stream_loses_events_and_says_how_many_in_its_lines():
    hub = TapHub()
    sub = hub.subscribe(TapFilter())
    route = tap_route()
    exchange(hub, route, 1)
    sub.paused = True  # its reader's socket is full
    exchange(hub, route, 2)
    exchange(hub, route, 3)
    sub.paused = False
    exchange(hub, route, 4)
    lines = [json.loads(line) for line in ndjson(sub.take()).splitlines()]
    assert [(d.get("id"), d["kind"]) for d in lines] == [
        ("cluster-1:outbound:1", "request_init"), ("cluster-1:outbound:1", "response_init"),
        ("cluster-1:outbound:1", "response_end"), (None, "dropped"),
        ("cluster-1:outbound:4", "request_init"), ("cluster-1:outbound:4", "response_init"),
        ("cluster-1:outbound:4", "response_end")]
    assert lines[3]["dropped"] == 6 and sub.dropped_total == 6


async def test_a_stream_waits_for_events_and_takes_them_all_at_once():
    hub = TapHub()
    sub = hub.subscribe(TapFilter(), buffer=1)  # one request (its later events ride on it)
    waiting = asyncio.ensure_future(sub.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    exchange(hub, tap_route(), 1)
    exchange(hub, tap_route(), 2)  # a request over the buffer: its three events lost
    assert await asyncio.wait_for(waiting, 1) is True
    lines = [json.loads(line) for line in ndjson(sub.take()).splitlines()]
    assert [(d.get("id"), d["kind"]) for d in lines] == [
        ("cluster-1:outbound:1", "request_init"), ("cluster-1:outbound:1", "response_init"),
        ("cluster-1:outbound:1", "response_end"), (None, "dropped")]
    assert lines[-1]["dropped"] == 3 and sub.dropped_total == 3
    assert sub.take() == deque()
    sub.close()
    assert await sub.wait() is False


async def test_a_compact_stream_defines_each_route_once_then_sends_arrays():
    hub = TapHub()
    sub = hub.subscribe(TapFilter())
    route, other = tap_route(), tap_route()
    encode = CompactEncoder()
    exchange(hub, route, 1)
    x = hub.open(other, 2, b"POST", b'/a "q"')
    x.phase("response_end", 503, 1.5, 2.5, 0, "upstream said no", grpc_status=14)
    hub.publish(TapEvent(id="h2:9", kind="request_init", direction="outbound", cluster="cluster-1"))
    first = [json.loads(line) for line in encode(sub.take()).splitlines()]
    exchange(hub, route, 3)
    second = [json.loads(line) for line in encode(sub.take()).splitlines()]
    definition = {"route": route.number, "id": "cluster-1:outbound:", "direction": "outbound",
                  "cluster": "cluster-1", "src_cluster": "cluster-1", "src_identity": "", "dst_cluster": "cluster-3",
                  "dst_namespace": "httpbin", "dst_service": "httpbin", "dst_endpoint": "10.0.0.1:8080",
                  "scheme": "http", "authority": "httpbin.httpbin:8080", "tls": True}
    assert first[0] == definition
    # a request whose three events go out together: one array for them
    whole = first[1]
    assert whole[:3] == [route.number, 1, WHOLE_REQUEST] and whole[4:8] == ["GET", "/get", 200, 1.5]
    assert whole[9:15] == [200, 1.5, 2.5, 42, "", None] and whole[15] >= whole[8] >= whole[3]
    assert first[2] == {**definition, "route": other.number}
    # one whose response_init never came: an array an event
    assert first[3:5] == [[other.number, 2, 0, 0, 0.0, 0.0, 0, first[3][7], "POST", '/a "q"', "", None],
                          [other.number, 2, 2, 503, 1.5, 2.5, 0, first[4][7], "POST", '/a "q"', "upstream said no", 14]]
    assert first[5]["id"] == "h2:9" and first[5]["kind"] == "request_init"  # published whole: a whole dict
    assert [line[:3] for line in second] == [[route.number, 3, WHOLE_REQUEST]]  # defined already
    assert len(encode(deque([TapDropped(5)]))) < 40


async def test_a_compact_stream_is_a_fraction_of_the_json_one():
    hub = TapHub()
    full, compact = hub.subscribe(TapFilter()), hub.subscribe(TapFilter())
    route = tap_route()
    for n in range(100):
        exchange(hub, route, n)
    assert len(CompactEncoder()(compact.take())) * 10 < len(ndjson(full.take()))


# -- later phases ride on their exchange ---------------------------------------------

def kinds_of(lines: bytes) -> list[tuple[str | None, str]]:
    return [(d.get("id"), d["kind"]) for d in map(json.loads, lines.splitlines())]


async def test_a_request_is_one_queued_item_whose_events_come_out_in_order():
    hub = TapHub()
    sub = hub.subscribe(TapFilter(), buffer=1)
    x = hub.open(tap_route(), 1, b"GET", b"/get")
    x.phase("response_init", 200, 1.5)
    x.phase("response_end", 200, 1.5, 2.5, 42)  # the buffer is full, yet nothing is lost: they ride on x
    items = sub.take()
    assert list(items) == [x] and sub.dropped_total == 0
    assert kinds_of(ndjson(items)) == [("cluster-1:outbound:1", k) for k in ("request_init", "response_init",
                                                                            "response_end")]


async def test_an_exchange_open_at_a_flush_gets_its_later_phases_in_later_flushes():
    hub = TapHub()
    sub = hub.subscribe(TapFilter())
    encode = CompactEncoder()
    route = tap_route()
    x = hub.open(route, 1, b"GET", b"/get")
    first = [json.loads(line) for line in encode(sub.take()).splitlines()]
    waiting = asyncio.ensure_future(sub.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    x.phase("response_init", 200, 1.5)
    assert await asyncio.wait_for(waiting, 1) is True  # the later phase queued the exchange again
    second = [json.loads(line) for line in encode(sub.take()).splitlines()]
    x.phase("response_end", 200, 1.5, 2.5, 42)
    third = [json.loads(line) for line in encode(sub.take()).splitlines()]
    assert first[0]["route"] == route.number and [a[:3] for a in first[1:]] == [[route.number, 1, 0]]
    assert [a[:4] for a in second] == [[route.number, 1, 1, 200]]
    assert [a[:7] for a in third] == [[route.number, 1, 2, 200, 1.5, 2.5, 42]]
    assert first[1][7] <= second[0][7] <= third[0][7]
    assert encode(sub.take()) == b""  # nothing more, nothing twice


async def test_a_request_whose_init_was_lost_still_reports_its_later_events():
    hub = TapHub()
    sub = hub.subscribe(TapFilter(), buffer=1)
    route = tap_route()
    first = hub.open(route, 1, b"GET", b"/a")
    second = hub.open(route, 2, b"GET", b"/b")  # over the buffer: its request_init is lost
    assert sub.dropped_total == 1
    head = kinds_of(ndjson(sub.take()))
    second.phase("response_init", 200, 1.0)  # queues the second
    first.phase("response_init", 200, 1.0)  # the first was read: queued again? the buffer is full: lost
    first.phase("response_end", 200, 1.0, 2.0, 3)  # lost too
    second.phase("response_end", 200, 1.0, 2.0, 3)  # rides on the second
    assert head == [("cluster-1:outbound:1", "request_init"), (None, "dropped")]
    tail = [json.loads(line) for line in ndjson(sub.take()).splitlines()]
    assert [(d.get("id"), d["kind"]) for d in tail] == [
        ("cluster-1:outbound:2", "response_init"), ("cluster-1:outbound:2", "response_end"), (None, "dropped")]
    assert tail[-1]["dropped"] == 2 and sub.dropped_total == 3


async def test_subscribers_reading_at_different_times_each_get_every_event_once():
    hub = TapHub()
    early, late = hub.subscribe(TapFilter()), hub.subscribe(TapFilter())
    ends = hub.subscribe(TapFilter(kinds=("response_end",)))
    x = hub.open(tap_route(), 1, b"GET", b"/get")
    assert list(ends.take()) == []  # not queued where its request_init is not wanted
    got_early = kinds_of(ndjson(early.take()))
    x.phase("response_init", 200, 1.5)
    got_early += kinds_of(ndjson(early.take()))
    x.phase("response_end", 200, 1.5, 2.5, 42)
    got_early += kinds_of(ndjson(early.take()))
    three = [("cluster-1:outbound:1", k) for k in ("request_init", "response_init", "response_end")]
    assert got_early == three
    assert kinds_of(ndjson(late.take())) == three
    assert [(e.id, e.kind) for e in await drain(ends)] == [("cluster-1:outbound:1", "response_end")]


async def test_an_iterating_reader_gets_the_phases_that_come_while_it_reads():
    hub = TapHub()
    sub = hub.subscribe(TapFilter())
    x = hub.open(tap_route(), 1, b"GET", b"/get")
    assert (await sub.__anext__()).kind == "request_init"
    x.phase("response_init", 200, 1.5)
    x.phase("response_end", 200, 1.5, 2.5, 42)
    head, end = await drain(sub)
    assert (head.kind, head.status, end.kind, end.bytes) == ("response_init", 200, "response_end", 42)
    assert await drain(sub) == [] and not sub.take()


async def test_a_capped_subscriber_pays_a_token_for_each_phase_even_riding():
    clock = Clock()
    hub = TapHub(clock=clock)
    sub = hub.subscribe(TapFilter(max_rps=2))  # a burst of 2 events
    exchange(hub, tap_route(), 1)
    assert kinds_of(ndjson(sub.take())) == [("cluster-1:outbound:1", "request_init"),
                                            ("cluster-1:outbound:1", "response_init"), (None, "dropped")]
    assert sub.dropped_total == 1


async def test_head_and_end_is_both_phases_at_one_moment():
    hub = TapHub()
    sub, stream = hub.subscribe(TapFilter()), hub.subscribe(TapFilter())
    x = hub.open(tap_route(), 1, b"GET", b"/get")
    x.head_and_end(200, 2.5, 1.5, 2.5, 42)
    init, head, end = await drain(sub)
    assert [json.loads(line) for line in ndjson(stream.take()).splitlines()] == [
        e.to_dict() for e in (init, head, end)]  # a whole request's lines, from one template
    assert (head.kind, head.status, head.latency_ms, head.duration_ms) == ("response_init", 200, 2.5, 0.0)
    assert (end.kind, end.status, end.latency_ms, end.duration_ms, end.bytes, end.error) == (
        "response_end", 200, 1.5, 2.5, 42, "")
    assert init.ts <= head.ts == end.ts
    with pytest.raises(ValueError, match="request_init"):
        x.phase("request_init", 0, 0.0)


async def test_requests_selected_by_different_method_and_path_filters_reach_each_its_own():
    hub = TapHub()
    posts = hub.subscribe(TapFilter(method="post"))
    api = hub.subscribe(TapFilter(path_prefix="/api", kinds=("response_init", "response_end")))
    route = tap_route()
    for n, method, path in ((1, b"POST", b"/api/a"), (2, b"GET", b"/api/b"), (3, b"POST", b"/c"),
                            (4, b"POST", b"/api/d")):
        exchange(hub, route, n, method, path)
    assert [(e.id[-1], e.kind) for e in await drain(posts)] == [
        (n, k) for n in "134" for k in ("request_init", "response_init", "response_end")]
    assert [(e.id[-1], e.kind) for e in await drain(api)] == [
        (n, k) for n in "124" for k in ("response_init", "response_end")]


# -- a request answered whole before anybody was told it began (TapHub.whole) ---------------

ANSWER = dict(ts=1000.0, status=200, latency_ms=2.5, ttfb_ms=1.5, nbytes=42)


def whole(hub: TapHub, route: TapRoute, n: int, method: bytes = b"GET", target: bytes = b"/get") -> None:
    hub.whole(route, n, method, target, *ANSWER.values())


def answered_events(n: int, path: str = "/get") -> list[tuple]:
    """What the three events of `whole(hub, route, n)` say."""
    request = (f"cluster-1:outbound:{n}", "GET", path)
    return [(*request, "request_init", 0, 0.0, 0.0, 0, 1000.0), (*request, "response_init", 200, 2.5, 0.0, 0, 1000.0025),
            (*request, "response_end", 200, 1.5, 2.5, 42, 1000.0025)]


def said(e: TapEvent) -> tuple:
    return e.id, e.method, e.path, e.kind, e.status, e.latency_ms, e.duration_ms, e.bytes, round(e.ts, 7)


async def test_an_answered_request_goes_to_the_controllers_stream_as_its_compact_line():
    hub = TapHub()
    sub = hub.subscribe(TapFilter())
    route = tap_route()
    whole(hub, route, 1)
    whole(hub, route, 2, target=b"/p?q=\xe9")
    items = sub.take()
    assert [type(item) for item in items] == [AnsweredRow, AnsweredRow]  # no exchange, no event object
    lines = CompactEncoder()(items).splitlines()
    assert len(lines) == 2  # the route's definition, then both requests in one line
    assert json.loads(lines[1]) == [[route.number, 1, ANSWERED, 1000.0, "GET", "/get", 200, 2.5, 1.5, 42],
                                    [route.number, 2, ANSWERED, 1000.0, "GET", "/p?q=\xe9", 200, 2.5, 1.5, 42]]
    parse = CompactLines()
    events = [e for line in lines for e in parse(line)]
    assert [said(e) for e in events] == answered_events(1) + answered_events(2, "/p?q=\xe9")
    assert {e.dst_service for e in events} == {"httpbin"} and all(e.tls for e in events)


@pytest.mark.parametrize("reader", ["async for", "json lines"])
async def test_an_answered_request_reads_as_the_same_three_events_whatever_the_reader(reader):
    hub = TapHub()
    sub = hub.subscribe(TapFilter())
    whole(hub, tap_route(), 5)
    if reader == "async for":
        events = await drain(sub)
    else:
        events = [TapEvent(**json.loads(line)) for line in ndjson(sub.take()).splitlines()]
    assert [said(e) for e in events] == answered_events(5)


async def test_an_answered_request_reaches_filtered_and_several_subscribers_as_an_exchange():
    hub = TapHub()
    everything, ends, api = (hub.subscribe(TapFilter()), hub.subscribe(TapFilter(kinds=("response_end",))),
                             hub.subscribe(TapFilter(path_prefix="/api")))
    route = tap_route()
    whole(hub, route, 1, target=b"/api/x")
    whole(hub, route, 2, target=b"/other")
    assert [said(e) for e in await drain(everything)] == answered_events(1, "/api/x") + answered_events(2, "/other")
    assert [said(e) for e in await drain(ends)] == [answered_events(n, p)[2] for n, p in ((1, "/api/x"),
                                                                                          (2, "/other"))]
    assert [said(e) for e in await drain(api)] == answered_events(1, "/api/x")


async def test_an_answered_request_over_the_buffer_is_three_events_lost_and_counted():
    hub = TapHub()
    sub = hub.subscribe(TapFilter(), buffer=1)
    route = tap_route()
    whole(hub, route, 1)
    whole(hub, route, 2)
    assert sub.dropped_total == 3
    events = await drain(sub)
    assert [said(e) for e in events[:3]] == answered_events(1)
    assert events[3:] == [TapDropped(3)]


async def test_nobody_hears_an_answered_request_when_no_filter_selects_it():
    hub = TapHub()
    sub = hub.subscribe(TapFilter(service="other"))
    whole(hub, tap_route(), 1)
    assert not sub.take() and sub.dropped_total == 0


async def test_answered_requests_share_lines_in_order_among_the_other_items():
    hub = TapHub()
    sub = hub.subscribe(TapFilter())
    route = tap_route()
    for n in range(1, 601):
        whole(hub, route, n)
        if n == 300:
            exchange(hub, route, 1000)  # an exchange between them: its own line, in its place
    encoded = CompactEncoder()(sub.take()).splitlines()
    lines = [json.loads(line) for line in encoded]
    assert [len(line) if isinstance(line[0], list) else line[:3] for line in lines[1:]] == [
        256, 44, [route.number, 1000, WHOLE_REQUEST], 256, 44]
    parse = CompactLines()
    numbers = [int(e.id.rpartition(":")[2]) for line in encoded for e in parse(line) if e.kind == "response_end"]
    assert numbers == [*range(1, 301), 1000, *range(301, 601)]
