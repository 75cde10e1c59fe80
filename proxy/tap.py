"""Tap: hands data-plane events to the subscribers that asked for them.

Publishing is synchronous and bounded: per subscriber a filter check, a token
bucket (when the filter caps the rate) and an append to a bounded queue. A
subscriber that falls behind, or whose stream is `paused`, loses events,
counted; the next thing it reads after the gap is `TapDropped(n)`. Events are
shared by every subscriber: the publisher must not change one once published.

Two ways in:
- `TapHub.publish(event)`: one whole `TapEvent`, matched against each filter.
- `TapHub.open(route, ...)`, for the per-request relays: a `TapRoute` holds what
  the requests of one destination share (built once per destination, with its
  JSON, and with the subscriptions whose filter selects it, found again only
  when somebody subscribes or leaves); a request adds its number, method and
  path. Its events are compact records queued as they happen (`TapExchange`,
  `TapExchange.phase`), turned into `TapEvent`s only for a subscriber that
  iterates events, and encoded by `ndjson` from the JSON its route and its
  request share. An uncapped subscriber costs a proxied request a few
  microseconds, where three events built, matched and encoded whole cost
  several times that.

Two ways out: iterate the subscription (`async for`), or, to stream in
batches, `await sub.wait()` then `ndjson(sub.take())` -- or, for a reader that
rebuilds the events itself (the controller), a `CompactEncoder`'s lines: each
route's shared fields once per stream, then one short array a request event.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Union

import orjson

from proxy.events import EVENT_KINDS, TapDropped, TapEvent, TapFilter

# a later phase of an exchange: (exchange, kind, status, latency_ms, duration_ms, bytes, error, grpc_status, ts);
# in a queue, an exchange itself stands for its request_init event
PhaseRecord = tuple
TapItem = Union[TapEvent, TapDropped, "TapExchange", PhaseRecord]
_NEWLINE = orjson.OPT_APPEND_NEWLINE
_COMMA = ord(",")
# an event's line: its own fields, then the request's (TapExchange.fixed)
_INIT_LINE = b'{"kind":"request_init","status":0,"latency_ms":0.0,"duration_ms":0.0,"bytes":0,"grpc_status":null,' \
             b'"error":"","ts":%b,%b'
_PHASE_LINE = b'{"kind":%b,"status":%d,"latency_ms":%b,"duration_ms":%b,"bytes":%d,"grpc_status":null,' \
              b'"error":"","ts":%b,%b'
_KIND_JSON = {kind: orjson.dumps(kind) for kind in ("response_init", "response_end")}
_METHOD_JSON: dict[bytes, bytes] = {}  # request method -> its JSON string
_METHOD_JSON_MAX = 64
# the fields of an event that a destination's requests share (TapRoute.event), apart from the id's prefix
_ROUTE_FIELDS = ("direction", "cluster", "src_cluster", "src_identity", "dst_cluster", "dst_namespace",
                 "dst_service", "dst_endpoint", "scheme", "authority", "tls")


_ROUTE_NUMBERS = itertools.count(1)


class TapRoute:
    """What the tap events of one destination's requests share: `event` holds those
    fields (its id is the prefix of the requests' ids, its method and path are empty)."""

    __slots__ = ("event", "id_json", "json", "number", "definition", "subs", "narrow", "generation")

    def __init__(self, event: TapEvent) -> None:
        self.event = event
        self.id_json = b'"id":' + orjson.dumps(event.id)[:-1]  # '"id":"<prefix>', open for the number
        shared = {name: getattr(event, name) for name in _ROUTE_FIELDS}
        # the JSON of the shared fields, closing a line: ',"direction":...,"tls":false}\n'
        self.json = b"," + orjson.dumps(shared, option=_NEWLINE)[1:]
        # in compact streams (CompactEncoder): the route's number, and the line that defines it
        self.number = number = next(_ROUTE_NUMBERS)
        self.definition = orjson.dumps({"route": number, "id": event.id, **shared}, option=_NEWLINE)
        self.subs: tuple[TapSubscription, ...] = ()  # whose filter selects this route, as of `generation`
        self.narrow = False  # some of them filter by method or path: check each request
        self.generation = -1


class TapExchange:
    """The tap of one request: its route, number, method and path, when it began,
    and the subscriptions whose filter selects it."""

    __slots__ = ("route", "number", "method", "target", "ts", "subs", "_fixed", "_compact")

    def __init__(self, route: TapRoute, number: int, method: bytes, target: bytes, ts: float,
                 subs: tuple[TapSubscription, ...]) -> None:
        self.route = route
        self.number = number
        self.method = method
        self.target = target
        self.ts = ts
        self.subs = subs
        self._fixed = b""
        self._compact: tuple[bytes, bytes] | None = None

    def phase(self, kind: str, status: int, latency_ms: float, duration_ms: float = 0.0, nbytes: int = 0,
              error: str = "", grpc_status: int | None = None) -> None:
        """A later event of the request (`response_init`, `response_end`); never blocks."""
        record = (self, kind, status, latency_ms, duration_ms, nbytes, error, grpc_status, time.time())
        for sub in self.subs:
            if kind in sub.kinds:
                sub.add(record)

    def event(self) -> TapEvent:
        """The request_init event."""
        return event_of((self, "request_init", 0, 0.0, 0.0, 0, "", None, self.ts))

    def fixed(self) -> bytes:
        """The JSON of the fields every event of the request has, closing a line that an
        event's own fields opened: '"id":...,"tls":false}\\n'."""
        if not self._fixed:
            route = self.route
            method = _METHOD_JSON.get(self.method)
            if method is None:
                if len(_METHOD_JSON) >= _METHOD_JSON_MAX:
                    _METHOD_JSON.clear()
                method = _METHOD_JSON[self.method] = orjson.dumps(self.method.decode("latin-1"))
            self._fixed = b'%b%d","method":%b,"path":%b%b' % (
                route.id_json, self.number, method, orjson.dumps(self.target.decode("latin-1")), route.json)
        return self._fixed


    def compact(self) -> tuple[bytes, bytes]:
        """What its compact lines start and end with: '[<route>,<number>,' and
        ',"GET","/p"' (see CompactEncoder)."""
        if not self._compact:
            self._compact = (b"[%d,%d," % (self.route.number, self.number),
                             b",%b,%b" % (orjson.dumps(self.method.decode("latin-1")),
                                          orjson.dumps(self.target.decode("latin-1"))))
        return self._compact


def event_of(record: PhaseRecord) -> TapEvent:
    """The TapEvent a phase record stands for."""
    x, kind, status, latency_ms, duration_ms, nbytes, error, grpc_status, ts = record
    e = x.route.event
    return TapEvent(e.id + str(x.number), kind, e.direction, e.cluster, e.src_cluster, e.src_identity,
                    e.dst_cluster, e.dst_namespace, e.dst_service, e.dst_endpoint, x.method.decode("latin-1"),
                    e.scheme, e.authority, x.target.decode("latin-1"), status, latency_ms, duration_ms, nbytes,
                    e.tls, grpc_status, error, ts)


def ndjson(items: Iterable[TapItem]) -> bytearray:
    """One JSON object a line (the fields of `TapEvent.to_dict()`, or of `TapDropped`).

    Written into one bytearray, each orjson output dropped at once: keeping hundreds of
    them alive until a join made each dumps() several times slower (orjson allocates
    its output large, then shrinks it)."""
    buf = bytearray()
    for item in items:
        kind_of = type(item)
        if kind_of is tuple:
            x, kind, status, latency_ms, duration_ms, nbytes, error, grpc_status, ts = item
            kind_json = _KIND_JSON.get(kind)
            if error or grpc_status is not None or kind_json is None:
                buf += orjson.dumps({"kind": kind, "status": status, "latency_ms": latency_ms,
                                     "duration_ms": duration_ms, "bytes": nbytes, "grpc_status": grpc_status,
                                     "error": error, "ts": ts})
                buf[-1] = _COMMA  # for the closing brace: the request's fixed fields follow
                buf += x._fixed or x.fixed()
            else:  # the common case: cheaper than a dict through orjson
                buf += _PHASE_LINE % (kind_json, status, orjson.dumps(latency_ms), orjson.dumps(duration_ms),
                                      nbytes, orjson.dumps(ts), x._fixed or x.fixed())
        elif kind_of is TapExchange:
            buf += _INIT_LINE % (orjson.dumps(item.ts), item._fixed or item.fixed())
        else:
            buf += orjson.dumps(item, option=_NEWLINE)
    return buf


# a compact event line: [route, request number, kind (index in EVENT_KINDS), status, latency_ms,
# duration_ms, bytes, ts, method, path, error, grpc_status]
_COMPACT_INIT = b'%b0,0,0.0,0.0,0,%b%b,"",null]\n'
_COMPACT_PHASE = b'%b%d,%d,%b,%b,%d,%b%b,"",null]\n'
_COMPACT_PHASE_ANY = b'%b%d,%d,%b,%b,%d,%b%b,%b,%b]\n'
_KIND_NUMBER = {kind: number for number, kind in enumerate(EVENT_KINDS)}
_DEFINED_MAX = 4096  # route definitions a stream remembers having sent (then sends them again)


class CompactEncoder:
    """The lines of one compact stream: a route's definition (`TapRoute.definition`) the
    first time one of its requests' events goes out, then each such event as a short
    array (see `_COMPACT_PHASE`); events published whole and gaps as `ndjson` writes
    them. A seventh of the bytes of `ndjson`'s lines, for about the same work."""

    def __init__(self) -> None:
        self._defined: set[int] = set()

    def __call__(self, items: Iterable[TapItem]) -> bytearray:
        buf = bytearray()
        defined = self._defined
        for item in items:
            kind_of = type(item)
            if kind_of is tuple:
                x, kind, status, latency_ms, duration_ms, nbytes, error, grpc_status, ts = item
                kind_number = _KIND_NUMBER.get(kind)
                if kind_number is None:
                    buf += orjson.dumps(event_of(item), option=_NEWLINE)
                    continue
                if x.route.number not in defined:
                    self._define(buf, x.route)
                head, request = x._compact or x.compact()
                if error or grpc_status is not None:
                    buf += _COMPACT_PHASE_ANY % (head, kind_number, status, orjson.dumps(latency_ms),
                                                 orjson.dumps(duration_ms), nbytes, orjson.dumps(ts), request,
                                                 orjson.dumps(error), orjson.dumps(grpc_status))
                else:
                    buf += _COMPACT_PHASE % (head, kind_number, status, orjson.dumps(latency_ms),
                                             orjson.dumps(duration_ms), nbytes, orjson.dumps(ts), request)
            elif kind_of is TapExchange:
                if item.route.number not in defined:
                    self._define(buf, item.route)
                head, request = item._compact or item.compact()
                buf += _COMPACT_INIT % (head, orjson.dumps(item.ts), request)
            else:
                buf += orjson.dumps(item, option=_NEWLINE)
        return buf

    def _define(self, buf: bytearray, route: TapRoute) -> None:
        if len(self._defined) >= _DEFINED_MAX:
            self._defined.clear()
        self._defined.add(route.number)
        buf += route.definition


class TapSubscription:
    """Async iterator of `TapEvent | TapDropped`; `close()` to leave (iteration ends)."""

    def __init__(self, hub: TapHub, flt: TapFilter, buffer: int, clock: Callable[[], float]) -> None:
        self.filter = flt
        self.kinds = frozenset(flt.kinds)
        self.dropped_total = 0
        self.paused = False  # the reader cannot take more now: what comes is lost, counted
        self._hub = hub
        self._buffer = buffer
        self._clock = clock
        # events, each gap preceded by its TapDropped: at most 2 * buffer items
        self._items: deque[TapItem] = deque()
        self._events = 0
        self._dropped = 0  # lost since the last TapDropped queued
        self._rate = flt.max_rps
        self._burst = max(1.0, flt.max_rps)
        self._tokens = self._burst
        self._stamp = clock()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def offer(self, event: TapEvent) -> None:
        if self.filter.matches(event):
            self.add(event)

    def add(self, item: TapItem) -> None:
        """Queue an event the filter selected, within the rate cap and the buffer."""
        if self._closed:
            return
        if self.paused or self._events >= self._buffer:
            self.lose()
            return
        if self._rate:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens < 1.0:
                self.lose()
                return
            self._tokens -= 1.0
        if self._dropped:
            self._items.append(TapDropped(self._dropped))
            self._dropped = 0
        self._items.append(item)
        self._events += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def lose(self) -> None:
        self._dropped += 1
        self.dropped_total += 1

    async def wait(self) -> bool:
        """Until something is pending (True) or the subscription is closed (False)."""
        while not self._closed and not self._items and not self._dropped:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return not self._closed

    def take(self) -> deque[TapItem]:
        """Everything pending, a gap at the end reported, as `ndjson` encodes it."""
        items = self._items
        self._items = deque()
        self._events = 0
        if self._dropped:
            items.append(TapDropped(self._dropped))
            self._dropped = 0
        return items

    def __aiter__(self) -> TapSubscription:
        return self

    async def __anext__(self) -> TapEvent | TapDropped:
        if not await self.wait():
            raise StopAsyncIteration
        if not self._items:
            lost = TapDropped(self._dropped)
            self._dropped = 0
            return lost
        item = self._items.popleft()
        kind_of = type(item)
        if kind_of is TapDropped:
            return item
        self._events -= 1
        if kind_of is tuple:
            return event_of(item)
        return item.event() if kind_of is TapExchange else item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._items.clear()
        self._hub._remove(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class TapHub:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.active = False  # True iff somebody subscribes: build no event otherwise
        self._clock = clock
        self._subs: tuple[TapSubscription, ...] = ()
        self._generation = 0  # of _subs: a TapRoute's subscriptions are found again when it changes

    def publish(self, event: TapEvent) -> None:
        """Never blocks, never raises."""
        for sub in self._subs:
            try:
                sub.offer(event)
            except Exception:  # a malformed event must not break the request that published it
                sub.lose()

    def open(self, route: TapRoute, number: int, method: bytes, target: bytes) -> TapExchange | None:
        """Publish the request_init event of a request to `route`; the exchange its later
        phases go through, or None when no filter selects the request. Never blocks."""
        if route.generation != self._generation:
            e = route.event
            route.subs = tuple(s for s in self._subs if s.filter.selects_route(e))
            route.narrow = any(s.filter.per_request for s in route.subs)
            route.generation = self._generation
        subs = route.subs
        if not subs:
            return None
        if route.narrow:
            m, p = method.decode("latin-1"), target.decode("latin-1")
            subs = tuple(s for s in subs if s.filter.selects_request(m, p))
            if not subs:
                return None
        x = TapExchange(route, number, method, target, time.time(), subs)
        for sub in subs:
            if "request_init" in sub.kinds:
                sub.add(x)
        return x

    def subscribe(self, flt: TapFilter, *, buffer: int = 1000) -> TapSubscription:
        if buffer < 1:
            raise ValueError(f"tap subscribe: buffer must be >= 1, got {buffer}")
        if flt.max_rps < 0:
            raise ValueError(f"tap subscribe: max_rps must be >= 0, got {flt.max_rps}")
        sub = TapSubscription(self, flt, buffer, self._clock)
        self._subs = self._subs + (sub,)
        self._generation += 1
        self.active = True
        return sub

    def _remove(self, sub: TapSubscription) -> None:
        self._subs = tuple(s for s in self._subs if s is not sub)
        self._generation += 1
        self.active = bool(self._subs)
