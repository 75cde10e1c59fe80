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
  path. The request's exchange (`TapExchange`) is queued once, with its
  request_init event; its later phases (`phase`, or `head_and_end` for both at
  one moment) are recorded on it and ride along: a reader takes, from each
  exchange it reaches, every phase that has happened by then and that it has not
  had yet, and an exchange whose later phases come after it was read is queued
  again (see `TapExchange.marks`). A subscriber thus sees the events of each
  request in their order (those of different requests grouped by request within
  a batch); an uncapped one costs a proxied request an object and an append,
  and its reader one orjson call an event (compact) or one template a request
  (json lines).
- `TapHub.whole(route, ...)`: a request whose answer came before anybody was
  told it began (the express lane defers its request_init, see
  proxy/http1/relay.py), all three events at once. For the one uncapped
  subscriber that wants everything (the controller's stream) it is queued as an
  `AnsweredRow`: one object with its numbers held unboxed, no exchange, no
  marks; the compact encoder makes its `ANSWERED` array, and one orjson call
  encodes a batch of them.

Two ways out: iterate the subscription (`async for`), or, to stream in
batches, `await sub.wait()` then `ndjson(sub.take())` -- or, for a reader that
rebuilds the events itself (the controller), a `CompactEncoder`'s lines: each
route's shared fields once per stream, then one short array a request event.
A batch must be encoded when it is taken (it is the encoder that marks what it
wrote on the exchanges).
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final, Union

import orjson

from proxy.events import EVENT_KINDS, TapDropped, TapEvent, TapFilter

# the phases of an exchange, as bits, in the order they happen
INIT: Final = 1
HEAD: Final = 2
END: Final = 4
ALL_PHASES: Final = INIT | HEAD | END
_PHASE_BITS: Final = {"request_init": INIT, "response_init": HEAD, "response_end": END}
# TapExchange.marks: 4 bits per subscription of its audience (the i-th from bit 4*i): queued
# (the exchange waits in its queue), then the phases it had (or lost, or does not want)
_SEAT_BITS: Final = 4
_QUEUED: Final = 1
# TapAudience.need: a subscription whose phases never ride (a capped one: each pays a token)
_ALWAYS_ADMIT: Final = -1

# an item of a subscription's queue: an exchange (for its first subscription), the exchange
# and its seat's shift (for another), an answered request's row (TapHub.whole), an event
# published whole, a gap
TapItem = Union[TapEvent, TapDropped, "TapExchange", "tuple[TapExchange, int]", "AnsweredRow"]
_NEWLINE: Final = orjson.OPT_APPEND_NEWLINE
_COMMA: Final = ord(",")
_dumps: Final = orjson.dumps
# an event's line: its own fields, then the request's (_fixed_json)
_INIT_LINE: Final = b'{"kind":"request_init","status":0,"latency_ms":0.0,"duration_ms":0.0,"bytes":0,' \
                    b'"grpc_status":null,"error":"","ts":%b,%b'
_HEAD_LINE: Final = b'{"kind":"response_init","status":%d,"latency_ms":%b,"duration_ms":0.0,"bytes":0,' \
                    b'"grpc_status":null,"error":"","ts":%b,%b'
_END_LINE: Final = b'{"kind":"response_end","status":%d,"latency_ms":%b,"duration_ms":%b,"bytes":%d,' \
                   b'"grpc_status":null,"error":"","ts":%b,%b'
_WHOLE_LINES: Final = _INIT_LINE + _HEAD_LINE + _END_LINE  # a request's three events at once
_METHOD_JSON: Final[dict[bytes, bytes]] = {}  # request method -> its JSON string
_METHOD_JSON_MAX: Final = 64
# the fields of an event that a destination's requests share (TapRoute.event), apart from the id's prefix
_ROUTE_FIELDS: Final = ("direction", "cluster", "src_cluster", "src_identity", "dst_cluster", "dst_namespace",
                        "dst_service", "dst_endpoint", "scheme", "authority", "tls")


_ROUTE_NUMBERS: Final = itertools.count(1)


class TapRoute:
    """What the tap events of one destination's requests share: `event` holds those
    fields (its id is the prefix of the requests' ids, its method and path are empty)."""

    def __init__(self, event: TapEvent) -> None:
        self.event = event
        self.id_json = b'"id":' + orjson.dumps(event.id)[:-1]  # '"id":"<prefix>', open for the number
        shared = {name: getattr(event, name) for name in _ROUTE_FIELDS}
        # the JSON of the shared fields, closing a line: ',"direction":...,"tls":false}\n'
        self.json = b"," + orjson.dumps(shared, option=_NEWLINE)[1:]
        # in compact streams (CompactEncoder): the route's number, and the line that defines it
        self.number = number = next(_ROUTE_NUMBERS)
        self.definition = orjson.dumps({"route": number, "id": event.id, **shared}, option=_NEWLINE)
        # whose filter selects this route (None: nobody's), as of `generation`
        self.audience: TapAudience | None = None
        self.narrow = False  # some of them filter by method or path: check each request
        self.narrowed: dict[tuple[TapSubscription, ...], TapAudience] = {}  # those that select a request
        self.generation = -1


class TapAudience:
    """The subscriptions an exchange's events may go to, and what each wants, as the
    exchange's `marks` and `need` say it: shared by the exchanges of a route."""

    def __init__(self, subs: tuple[TapSubscription, ...]) -> None:
        self.subs = subs
        marks = 0
        need = [0] * (END + 1)  # by phase bit: the queued marks of the seats that want it
        for i, sub in enumerate(subs):
            shift = i * _SEAT_BITS
            marks |= (ALL_PHASES & ~sub.wants) << (shift + 1)  # what it does not want, as had
            for bit in (INIT, HEAD, END):
                if sub.wants & bit:
                    need[bit] |= _ALWAYS_ADMIT if sub.capped else _QUEUED << shift
        self.marks = marks  # an exchange's, as it opens
        self.need = tuple(need)
        # the one subscription, uncapped and wanting every phase (the controller's stream): the fast way
        only = subs[0] if len(subs) == 1 else None
        self.only = only if only is not None and only.wants == ALL_PHASES and not only.capped else None

    def reach(self, x: TapExchange, bit: int) -> None:
        """Phase `bit` of `x` happened: queue `x` for each subscription that wants the
        phase and does not hold `x` yet."""
        for i, sub in enumerate(self.subs):
            if sub.wants & bit:
                sub.admit(x, i * _SEAT_BITS, bit)


class TapExchange:
    """The tap of one request: its route, number, method and path, when it began, the
    phases that happened since (`done`; `head`: status, latency_ms, ts of response_init;
    `end`: status, latency_ms, duration_ms, bytes, error, grpc_status, ts of
    response_end), and where each subscription of its audience stands (`marks`)."""

    head: tuple[int, float, float]
    end: tuple[int, float, float, int, str, int | None, float]

    def __init__(self, route: TapRoute, number: int, method: bytes, target: bytes, ts: float,
                 audience: TapAudience) -> None:
        self.route = route
        self.number = number
        self.method = method
        self.target = target
        self.ts = ts
        self.audience = audience
        self.marks = audience.marks
        self.done = INIT  # (`head` and `end` are set when their phase happens)

    def phase(self, kind: str, status: int, latency_ms: float, duration_ms: float = 0.0, nbytes: int = 0,
              error: str = "", grpc_status: int | None = None) -> None:
        """A later event of the request, once each: `response_init` (its status and
        latency_ms; a response head has no duration, bytes or error yet) or
        `response_end`. Never blocks."""
        if kind == "response_end":
            self.end = (status, latency_ms, duration_ms, nbytes, error, grpc_status, time.time())
            bit = END
        elif kind == "response_init":
            self.head = (status, latency_ms, time.time())
            bit = HEAD
        else:
            raise ValueError(f"tap phase: {kind!r} is none of response_init, response_end")
        self.done |= bit
        need = self.audience.need[bit]
        if self.marks & need != need:
            self.audience.reach(self, bit)

    def head_and_end(self, status: int, latency_ms: float, ttfb_ms: float, duration_ms: float, nbytes: int,
                     ts: float | None = None) -> None:
        """`response_init` (`latency_ms`) and `response_end` (`ttfb_ms`, `duration_ms`,
        `nbytes`, no error) at one moment (`ts`, now by default): a whole answer that came
        in one read."""
        if ts is None:
            ts = time.time()
        self.head = (status, latency_ms, ts)
        self.end = (status, ttfb_ms, duration_ms, nbytes, "", None, ts)
        self.done = ALL_PHASES
        need = self.audience.need
        if self.marks & need[HEAD] != need[HEAD]:
            self.audience.reach(self, HEAD)
        if self.marks & need[END] != need[END]:
            self.audience.reach(self, END)

    def unread(self, shift: int) -> int:
        """The phases the subscription at seat `shift` reads now (then counted as had,
        the exchange no longer queued for it)."""
        marks = self.marks
        done = self.done
        self.marks = (marks | done << (shift + 1)) & ~(_QUEUED << shift)
        return done & ~(marks >> (shift + 1)) & ALL_PHASES

    def event(self, bit: int) -> TapEvent:
        """The TapEvent of one of its phases."""
        if bit == INIT:
            kind, status, latency_ms, duration_ms, nbytes, error, grpc_status, ts = (
                "request_init", 0, 0.0, 0.0, 0, "", None, self.ts)
        elif bit == HEAD:
            kind = "response_init"
            status, latency_ms, ts = self.head
            duration_ms, nbytes, error, grpc_status = 0.0, 0, "", None
        else:
            kind = "response_end"
            status, latency_ms, duration_ms, nbytes, error, grpc_status, ts = self.end
        e = self.route.event
        return TapEvent(e.id + str(self.number), kind, e.direction, e.cluster, e.src_cluster, e.src_identity,
                        e.dst_cluster, e.dst_namespace, e.dst_service, e.dst_endpoint, self.method.decode("latin-1"),
                        e.scheme, e.authority, self.target.decode("latin-1"), status, latency_ms, duration_ms,
                        nbytes, e.tls, grpc_status, error, ts)


_NO_AUDIENCE: Final = TapAudience(())


def _seat(item: TapExchange | tuple[TapExchange, int]) -> tuple[TapExchange, int]:
    return (item, 0) if isinstance(item, TapExchange) else item


class AnsweredRow:
    """A request answered whole at one moment, as `TapHub.whole` queues it for the one
    subscription that takes everything: what its compact `ANSWERED` array holds."""

    def __init__(self, route: TapRoute, number: int, method: bytes, target: bytes, ts: float, status: int,
                 latency_ms: float, ttfb_ms: float, nbytes: int) -> None:
        self.route = route
        self.number = number
        self.method = method
        self.target = target
        self.ts = ts
        self.status = status
        self.latency_ms = latency_ms
        self.ttfb_ms = ttfb_ms
        self.nbytes = nbytes

    def compact(self) -> list:
        """Its ANSWERED array (see CompactEncoder)."""
        return [self.route.number, self.number, ANSWERED, self.ts, self.method.decode("latin-1"),
                self.target.decode("latin-1"), self.status, self.latency_ms, self.ttfb_ms, self.nbytes]

    def exchange(self) -> TapExchange:
        """The exchange it stands for, queued for the first seat, none of its phases had:
        for the readers that take events (`ndjson`, `async for`)."""
        # (no phase is to come: no audience to reach)
        x = TapExchange(self.route, self.number, self.method, self.target, self.ts, _NO_AUDIENCE)
        x.marks = _QUEUED
        x.done = ALL_PHASES
        x.head, x.end = answered_phases(self.ts, self.status, self.latency_ms, self.ttfb_ms, self.nbytes)
        return x


def answered_phases(ts: float, status: int, latency_ms: float, ttfb_ms: float,
                    nbytes: int) -> tuple[tuple[int, float, float], tuple[int, float, float, int, str, None, float]]:
    """`TapExchange.head` and `.end` of a request begun at `ts` and answered whole
    `latency_ms` later (an `ANSWERED` compact line; see `TapExchange.head_and_end`)."""
    end_ts = ts + latency_ms / 1000.0
    return (status, latency_ms, end_ts), (status, ttfb_ms, latency_ms, nbytes, "", None, end_ts)


def _method_json(method: bytes) -> bytes:
    json = _METHOD_JSON.get(method)
    if json is None:
        if len(_METHOD_JSON) >= _METHOD_JSON_MAX:
            _METHOD_JSON.clear()
        json = _METHOD_JSON[method] = orjson.dumps(method.decode("latin-1"))
    return json


def _fixed_json(x: TapExchange) -> bytes:
    """The JSON of the fields every event of a request has, closing a line that an
    event's own fields opened: '"id":...,"tls":false}\\n'."""
    route = x.route
    return b'%b%d","method":%b,"path":%b%b' % (route.id_json, x.number, _method_json(x.method),
                                                _dumps(x.target.decode("latin-1")), route.json)


def ndjson(items: Iterable[TapItem]) -> bytearray:
    """One JSON object a line (the fields of `TapEvent.to_dict()`, or of `TapDropped`).

    Written into one bytearray, each orjson output dropped at once: keeping hundreds of
    them alive until a join made each dumps() several times slower (orjson allocates
    its output large, then shrinks it)."""
    buf = bytearray()
    for item in items:
        if isinstance(item, TapExchange):
            x, shift = item, 0
        elif isinstance(item, AnsweredRow):
            x, shift = item.exchange(), 0
        elif isinstance(item, tuple):
            x, shift = item
        else:
            buf += orjson.dumps(item, option=_NEWLINE)
            continue
        bits = x.unread(shift)
        if not bits:
            continue
        fixed = _fixed_json(x)
        if bits & END:
            status, latency_ms, duration_ms, nbytes, error, grpc_status, end_ts = x.end
            if bits == ALL_PHASES and not error and grpc_status is None:  # the common case: one template
                head_status, head_latency_ms, head_ts = x.head
                head_ts_json = _dumps(head_ts)
                buf += _WHOLE_LINES % (
                    _dumps(x.ts), fixed, head_status, _dumps(head_latency_ms), head_ts_json, fixed, status,
                    _dumps(latency_ms), _dumps(duration_ms), nbytes,
                    head_ts_json if end_ts is head_ts else _dumps(end_ts), fixed)
                continue
        if bits & INIT:
            buf += _INIT_LINE % (_dumps(x.ts), fixed)
        if bits & HEAD:
            head_status, head_latency_ms, head_ts = x.head
            buf += _HEAD_LINE % (head_status, _dumps(head_latency_ms), _dumps(head_ts), fixed)
        if bits & END:
            if error or grpc_status is not None:
                buf += orjson.dumps({"kind": "response_end", "status": status, "latency_ms": latency_ms,
                                     "duration_ms": duration_ms, "bytes": nbytes, "grpc_status": grpc_status,
                                     "error": error, "ts": end_ts})
                buf[-1] = _COMMA  # for the closing brace: the request's fixed fields follow
                buf += fixed
            else:
                buf += _END_LINE % (status, _dumps(latency_ms), _dumps(duration_ms), nbytes, _dumps(end_ts), fixed)
    return buf


_DEFINED_MAX: Final = 4096  # route definitions a stream remembers having sent (then sends them again)
WHOLE_REQUEST: Final = len(EVENT_KINDS)  # the kind number of a compact line that holds a request's three events
ANSWERED: Final = WHOLE_REQUEST + 1  # the same, for a request answered whole at one moment (TapHub.whole)
ANSWERED_BATCH: Final = 256  # ANSWERED arrays a compact line holds at most (one path is 16 KiB at most)
assert EVENT_KINDS == ("request_init", "response_init", "response_end")  # the kind numbers below


class CompactEncoder:
    """The lines of one compact stream: a route's definition (`TapRoute.definition`) the
    first time one of its requests' events goes out, then each such event as a short
    array: [route, request number, kind (index in EVENT_KINDS), status, latency_ms,
    duration_ms, bytes, ts, method, path, error, grpc_status] -- or, when all three of a
    request's events go out together (the common case), one array for them:
    [route, request number, WHOLE_REQUEST, ts of request_init, method, path, then
    response_init's status, latency_ms, ts, then response_end's status, latency_ms,
    duration_ms, bytes, error, grpc_status, ts] (`TapExchange.head` and `.end` as they
    are) -- or, for requests answered whole at one moment (`TapHub.whole`), an array of
    up to ANSWERED_BATCH arrays [route, request number, ANSWERED, ts, method, path,
    status, latency_ms, ttfb_ms, bytes] (see `answered_phases`), made of the
    `AnsweredRow`s they were queued as, that one orjson call writes; events published
    whole and gaps as `ndjson` writes them. About a twelfth of the bytes of `ndjson`'s
    lines, for less work."""

    def __init__(self) -> None:
        self._defined: set[int] = set()

    def __call__(self, items: Iterable[TapItem]) -> bytearray:
        buf = bytearray()
        defined = self._defined
        rows: list[list] = []  # answered requests' arrays, for one line (their routes defined before it)
        for item in items:
            if isinstance(item, AnsweredRow):
                route = item.route
                if route.number not in defined:
                    self._define(buf, route)
                rows.append(item.compact())
                if len(rows) == ANSWERED_BATCH:
                    buf += _dumps(rows, option=_NEWLINE)
                    rows = []
                continue
            if rows:
                buf += _dumps(rows, option=_NEWLINE)
                rows = []
            if isinstance(item, TapExchange):
                x, shift = item, 0
            elif isinstance(item, tuple):
                x, shift = item
            else:
                buf += orjson.dumps(item, option=_NEWLINE)
                continue
            marks = x.marks  # (TapExchange.unread, inline: this is the controller's stream)
            done = x.done
            x.marks = (marks | done << (shift + 1)) & ~(_QUEUED << shift)
            bits = done & ~(marks >> (shift + 1)) & ALL_PHASES
            if not bits:
                continue
            route = x.route
            r = route.number
            if r not in defined:
                self._define(buf, route)
            n = x.number
            method = x.method.decode("latin-1")
            path = x.target.decode("latin-1")
            # one orjson call a line: cheaper than formatting its numbers and strings into a template
            if bits == ALL_PHASES:
                buf += _dumps([r, n, WHOLE_REQUEST, x.ts, method, path, *x.head, *x.end], option=_NEWLINE)
                continue
            if bits & INIT:
                buf += _dumps([r, n, 0, 0, 0.0, 0.0, 0, x.ts, method, path, "", None], option=_NEWLINE)
            if bits & HEAD:
                status, latency_ms, ts = x.head
                buf += _dumps([r, n, 1, status, latency_ms, 0.0, 0, ts, method, path, "", None], option=_NEWLINE)
            if bits & END:
                status, latency_ms, duration_ms, nbytes, error, grpc_status, ts = x.end
                buf += _dumps([r, n, 2, status, latency_ms, duration_ms, nbytes, ts, method, path, error, grpc_status],
                              option=_NEWLINE)
        if rows:
            buf += _dumps(rows, option=_NEWLINE)
        return buf

    def _define(self, buf: bytearray, route: TapRoute) -> None:
        if len(self._defined) >= _DEFINED_MAX:
            self._defined.clear()
        self._defined.add(route.number)
        buf += route.definition


class TapSubscription:
    """Async iterator of `TapEvent | TapDropped`; `close()` to leave (iteration ends).

    Its queue holds at most `buffer` items (exchanges, events published whole) between
    two reads; the later phases of an exchange it holds ride along at no cost."""

    def __init__(self, hub: TapHub, flt: TapFilter, buffer: int, clock: Callable[[], float]) -> None:
        self.filter = flt
        self.wants = sum(bit for kind, bit in _PHASE_BITS.items() if kind in flt.kinds)  # phase bits
        self.capped = flt.max_rps > 0
        self.dropped_total = 0
        self.paused = False  # the reader cannot take more now: what comes is lost, counted
        self._hub = hub
        self._buffer = buffer
        self._clock = clock
        # items, each gap preceded by its TapDropped: at most 2 * buffer of them
        self._items: deque[TapItem] = deque()
        self._held = 0  # items apart from gaps
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

    def add(self, item: TapEvent) -> None:
        """Queue an event the filter selected, within the rate cap and the buffer."""
        if self._closed:
            return
        if not ((not self._rate or self._token()) and self._queue(item)):
            self.lose()

    def admit(self, x: TapExchange, shift: int, bit: int) -> None:
        """Phase `bit` of `x`, which this subscription wants (its seat at `shift` in
        `x.marks`): it rides on `x` if `x` is queued here, else `x` is queued; within
        the rate cap and the buffer, else lost (and counted as had)."""
        if self._closed:
            return
        if not self._rate or self._token():
            if x.marks >> shift & _QUEUED:
                return  # it rides
            if self._queue(x if not shift else (x, shift)):
                x.marks |= _QUEUED << shift
                return
        self.lose()
        x.marks |= bit << (shift + 1)

    def _queue(self, item: TapItem) -> bool:
        if self.paused or self._held >= self._buffer:
            return False
        if self._dropped:
            self._items.append(TapDropped(self._dropped))
            self._dropped = 0
        self._items.append(item)
        self._held += 1
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def _token(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def lose(self, events: int = 1) -> None:
        self._dropped += events
        self.dropped_total += events

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
        """Everything pending, a gap at the end reported, for `ndjson` or a `CompactEncoder`
        to encode at once."""
        items = self._items
        self._items = deque()
        self._held = 0
        if self._dropped:
            items.append(TapDropped(self._dropped))
            self._dropped = 0
        return items

    def __aiter__(self) -> TapSubscription:
        return self

    async def __anext__(self) -> TapEvent | TapDropped:
        while await self.wait():
            items = self._items
            if not items:
                lost = TapDropped(self._dropped)
                self._dropped = 0
                return lost
            item = items[0]
            if isinstance(item, AnsweredRow):  # read as its exchange
                item = items[0] = item.exchange()
            if isinstance(item, (TapEvent, TapDropped)):
                items.popleft()
                if not isinstance(item, TapDropped):
                    self._held -= 1
                return item
            x, shift = _seat(item)
            had = x.marks >> (shift + 1)
            bits = x.done & ~had & ALL_PHASES
            first = bits & -bits  # the earliest phase not read yet: one event at a time
            if bits == first:  # the last one it has now: the exchange leaves the queue
                items.popleft()
                self._held -= 1
                x.marks &= ~(_QUEUED << shift)
            if first:
                x.marks |= first << (shift + 1)
                return x.event(first)
        raise StopAsyncIteration

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
        self._generation = 0  # of _subs: a TapRoute's audience is found again when it changes

    def publish(self, event: TapEvent) -> None:
        """Never blocks, never raises."""
        for sub in self._subs:
            try:
                sub.offer(event)
            except Exception:  # a malformed event must not break the request that published it
                sub.lose()

    def open(self, route: TapRoute, number: int, method: bytes, target: bytes,
             ts: float | None = None) -> TapExchange | None:
        """Publish the request_init event of a request to `route` (begun at `ts`, now by
        default); the exchange its later phases go through, or None when no filter
        selects the request. Never blocks."""
        if route.generation != self._generation:
            self._find_audience(route)
        audience = route.audience
        if audience is None:
            return None
        if route.narrow:
            m, p = method.decode("latin-1"), target.decode("latin-1")
            subs = tuple(s for s in audience.subs if s.filter.selects_request(m, p))
            if not subs:
                return None
            if len(subs) < len(audience.subs):
                narrowed = route.narrowed.get(subs)
                if narrowed is None:
                    narrowed = route.narrowed[subs] = TapAudience(subs)
                audience = narrowed
        x = TapExchange(route, number, method, target, time.time() if ts is None else ts, audience)
        only = audience.only
        if only is not None:  # (never closed nor capped: see TapAudience)
            if only._queue(x):
                x.marks = _QUEUED
            else:
                only.lose()
                x.marks = INIT << 1
        elif x.marks & audience.need[INIT] != audience.need[INIT]:
            audience.reach(x, INIT)
        return x

    def whole(self, route: TapRoute, number: int, method: bytes, target: bytes, ts: float, status: int,
              latency_ms: float, ttfb_ms: float, nbytes: int) -> None:
        """Publish a request to `route` begun at `ts` and answered whole `latency_ms`
        later: its three events at once (see `answered_phases`). Never blocks."""
        if route.generation != self._generation:
            self._find_audience(route)
        audience = route.audience
        if audience is None:
            return
        only = audience.only
        if only is not None and not route.narrow:
            if not only._queue(AnsweredRow(route, number, method, target, ts, status, latency_ms, ttfb_ms, nbytes)):
                only.lose(3)
            return
        x = self.open(route, number, method, target, ts)
        if x is not None:
            x.head_and_end(status, latency_ms, ttfb_ms, latency_ms, nbytes, ts + latency_ms / 1000.0)

    def _find_audience(self, route: TapRoute) -> None:
        """Whose filter selects `route`, as of now."""
        e = route.event
        subs = tuple(s for s in self._subs if s.filter.selects_route(e))
        route.audience = TapAudience(subs) if subs else None
        route.narrow = any(s.filter.per_request for s in subs)
        route.narrowed = {}
        route.generation = self._generation

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
