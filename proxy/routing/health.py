"""Endpoint health: peak-EWMA latency, in-flight counts, outlier ejection, dead gateways.

One `EndpointHealth` per proxy process, shared by the outbound proxy and the
gateway. State is keyed by the `Endpoint` value, so it survives a config
change that keeps the endpoint. The `Endpoint` objects the route table hands
out (`EndpointState.endpoint`) are also found by identity: hashing the frozen
dataclass (nine fields, in Python) was the most of what a request's
`start` + `success` cost.

Outlier ejection (as Envoy's consecutive-5xx detector):
- `consecutive_failures` failures in a row eject an endpoint for
  `base_ejection_s * 2**(ejections - 1)`, capped at `max_ejection_s`; it comes
  back by itself when that time is over. A success resets the count. The
  ejection count starts again from zero once the endpoint has stayed in for
  `max_ejection_s` after its last ejection.
- The "set" of an endpoint is each endpoint tuple declared with `track()`:
  the route table declares one set per `BackendGroup` (one cluster of one
  route) and one per gateway rule. An ejection is refused when it would leave
  more than `max_ejected_share` of any of its sets ejected, except that one
  endpoint of a set may always be ejected (so a lone failing backend is
  ejected and its tier fails over).

Gateway endpoints (`ep.gateway`) are unavailable while their gateway address
is marked dead by `set_gateway_alive(address, False)` (the probes). A failed
connect to a gateway endpoint marks that address down passively for
`GATEWAY_RECHECK_S`, or until the next `set_gateway_alive(address, True)`,
whichever comes first; it never shortens a probe's verdict of dead.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from proxy.config import Endpoint

DEFAULT_RTT_MS: Final = 30.0  # Linkerd's EWMA_DEFAULT_RTT: the estimate of an endpoint never measured
EWMA_DECAY_S: Final = 10.0  # Linkerd's EWMA_DECAY
GATEWAY_RECHECK_S: Final = 5.0
_INF: Final = math.inf


class EndpointState:
    """Mutable health of one endpoint; balancers read it directly."""

    def __init__(self, ep: Endpoint, now: float) -> None:
        self.endpoint = ep
        self.address = ep.address
        self.cluster = ep.cluster
        self.gateway = ep.gateway
        self.ewma_ms = DEFAULT_RTT_MS
        self.stamp = now
        self.inflight = 0
        self.failures = 0  # consecutive
        self.ejections = 0
        self.ejected_until = 0.0
        self.sets: tuple[tuple[EndpointState, ...], ...] = ()

    def estimate(self, now: float, decay_s: float) -> float:
        """The latency estimate now: it decays toward zero while no sample arrives, so a
        once-slow endpoint that is no longer chosen gets tried again."""
        elapsed = now - self.stamp
        return self.ewma_ms * math.exp(-elapsed / decay_s) if elapsed > 0 else self.ewma_ms

    def observe(self, rtt_ms: float, now: float, decay_s: float) -> None:
        """Peak EWMA (Finagle, Linkerd): a sample slower than the estimate replaces it at
        once; a faster one is blended in with the weight of the time since the last."""
        elapsed = now - self.stamp
        if elapsed > 0:
            w = math.exp(-elapsed / decay_s)
            current = self.ewma_ms * w
            self.ewma_ms = rtt_ms if rtt_ms > current else current + rtt_ms * (1.0 - w)
        elif rtt_ms > self.ewma_ms:
            self.ewma_ms = rtt_ms
        self.stamp = now


class EndpointHealth:
    def __init__(
        self,
        *,
        consecutive_failures: int = 5,
        base_ejection_s: float = 5.0,
        max_ejection_s: float = 300.0,
        max_ejected_share: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        ewma_decay_s: float = EWMA_DECAY_S,
    ) -> None:
        if consecutive_failures < 1:
            raise ValueError(f"EndpointHealth: consecutive_failures must be >= 1, got {consecutive_failures}")
        if not 0 < base_ejection_s <= max_ejection_s:
            raise ValueError(
                f"EndpointHealth: need 0 < base_ejection_s <= max_ejection_s, got {base_ejection_s}, {max_ejection_s}"
            )
        if not 0.0 <= max_ejected_share <= 1.0:
            raise ValueError(f"EndpointHealth: max_ejected_share must be within [0, 1], got {max_ejected_share}")
        if ewma_decay_s <= 0:
            raise ValueError(f"EndpointHealth: ewma_decay_s must be > 0, got {ewma_decay_s}")
        self.clock = clock
        self.decay_s = ewma_decay_s
        self._threshold = consecutive_failures
        self._base = base_ejection_s
        self._max = max_ejection_s
        self._share = max_ejected_share
        self._states: dict[Endpoint, EndpointState] = {}
        # id(st.endpoint) -> st for every state in _states: the state keeps its endpoint
        # alive, so the id names no other object while the entry exists
        self._by_id: dict[int, EndpointState] = {}
        self._gateway_down: dict[str, float] = {}  # gateway address -> down until (inf: until probed alive)

    # -- used by the route table -------------------------------------------------

    def state(self, ep: Endpoint) -> EndpointState:
        st = self._by_id.get(id(ep))
        if st is not None and st.endpoint is ep:
            return st
        st = self._states.get(ep)
        if st is None:
            st = self._states[ep] = self._by_id[id(ep)] = EndpointState(ep, self.clock())
        return st

    def track(self, sets: Iterable[Sequence[Endpoint]]) -> None:
        """Declare the endpoint sets of the current configuration (see the module doc).
        Forgets the state of every endpoint in none of them."""
        keep: dict[Endpoint, list[tuple[EndpointState, ...]]] = {}
        for endpoints in sets:
            members = tuple(self.state(ep) for ep in endpoints)
            for st in members:
                keep.setdefault(st.endpoint, []).append(members)
        self._states = {ep: self._states[ep] for ep in keep}
        self._by_id = {id(st.endpoint): st for st in self._states.values()}
        for ep, member_of in keep.items():
            self._states[ep].sets = tuple(member_of)

    def state_available(self, st: EndpointState, now: float) -> bool:
        if st.ejected_until > now:
            return False
        if st.gateway:
            down = self._gateway_down.get(st.address)
            if down is not None and down > now:
                return False
        return True

    # -- reported by the HTTP side -----------------------------------------------

    def start(self, ep: Endpoint) -> EndpointState:
        """An attempt to `ep` begins; its state, for `succeeded`."""
        st = self.state(ep)
        st.inflight += 1
        return st

    def success(self, ep: Endpoint, latency_ms: float) -> None:
        self.succeeded(self.state(ep), latency_ms)

    def succeeded(self, st: EndpointState, latency_ms: float) -> None:
        """`success` of the attempt whose `start` gave `st`."""
        if st.inflight > 0:
            st.inflight -= 1
        st.observe(latency_ms, self.clock(), self.decay_s)
        st.failures = 0

    def failure(self, ep: Endpoint, latency_ms: float) -> None:
        """Also raises the latency estimate, never lowers it: a backend that fails fast
        must not look attractive to the EWMA balancer."""
        st = self.state(ep)
        now = self.clock()
        if latency_ms > st.estimate(now, self.decay_s):
            st.ewma_ms = latency_ms
            st.stamp = now
        self._failed(st, now)

    def connect_failed(self, ep: Endpoint) -> None:
        """Ends the attempt begun by `start(ep)`, as `failure` does."""
        st = self.state(ep)
        now = self.clock()
        if ep.gateway and self._gateway_down.get(st.address, 0.0) != _INF:
            self._gateway_down[st.address] = now + GATEWAY_RECHECK_S
        self._failed(st, now)

    def set_gateway_alive(self, address: str, alive: bool) -> None:
        if alive:
            self._gateway_down.pop(address, None)
        else:
            self._gateway_down[address] = _INF

    def available(self, ep: Endpoint) -> bool:
        st = self._by_id.get(id(ep))
        if st is None or st.endpoint is not ep:
            st = self._states.get(ep)
        now = self.clock()
        if st is not None:
            return self.state_available(st, now)
        if ep.gateway:
            return self._gateway_down.get(ep.address, 0.0) <= now
        return True

    def snapshot(self) -> list[dict]:
        now = self.clock()
        out = []
        for st in sorted(self._states.values(), key=lambda s: (s.cluster, s.address, s.endpoint.path_prefix)):
            out.append(
                {
                    "address": st.address,
                    "cluster": st.cluster,
                    "gateway": st.gateway,
                    "path_prefix": st.endpoint.path_prefix,
                    "ewma_ms": round(st.estimate(now, self.decay_s), 3),
                    "inflight": st.inflight,
                    "failures": st.failures,
                    "ejected_until": st.ejected_until,
                    "ejected_for_s": round(max(st.ejected_until - now, 0.0), 3),
                    "ejections": st.ejections,
                    "available": self.state_available(st, now),
                }
            )
        return out

    # -- outlier ejection ----------------------------------------------------------

    def _failed(self, st: EndpointState, now: float) -> None:
        if st.inflight > 0:
            st.inflight -= 1
        st.failures += 1
        if st.failures >= self._threshold and st.ejected_until <= now and self._may_eject(st, now):
            if now - st.ejected_until > self._max:
                st.ejections = 0
            st.ejections += 1
            st.ejected_until = now + min(self._base * 2.0 ** min(st.ejections - 1, 62), self._max)
            st.failures = 0

    def _may_eject(self, st: EndpointState, now: float) -> bool:
        for members in st.sets:
            ejected = sum(1 for m in members if m.ejected_until > now)
            if ejected and ejected + 1 > self._share * len(members):
                return False
        return True
