import asyncio
import tracemalloc

import pytest

from proxy.events import TapDropped, TapEvent, TapFilter
from proxy.tap import TapHub


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
