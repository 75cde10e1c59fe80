"""Relay one client request to the endpoint its route chooses, per request.

Shared by the outbound proxy and the gateway: they decide the destination
(`Destination`), the relay picks an endpoint, forwards, retries an idempotent
request once on another endpoint when the first never answered, answers
502/503/504 with a text body saying why, and accounts for the attempt
(endpoint health), the request (metrics) and, when somebody listens, tap.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

from proxy.config import Endpoint
from proxy.events import TapEvent
from proxy.http1.forward import Outcome, forward
from proxy.http1.pool import Pools
from proxy.http1.server import Request, Response
from proxy.metrics import Metrics
from proxy.routing.health import EndpointHealth
from proxy.tap import TapHub

IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"))

# Plain-mode fallback (no mTLS yet): the outbound proxy names its cluster, and the
# service account its client claimed, in these headers on gateway hops, and the
# gateway believes them. With TLS the caller comes from its certificate and they
# are ignored. Never passed on to an endpoint.
SRC_CLUSTER_HEADER = b"x-meshtui-src-cluster"
SRC_SA_HEADER = b"x-meshtui-src-sa"
CLIENT_SA_HEADER = b"x-meshtui-service-account"  # a client's claim to the outbound proxy (meshtui curl --as)
_DROP = frozenset((SRC_CLUSTER_HEADER, SRC_SA_HEADER, CLIENT_SA_HEADER))


@dataclass(slots=True)
class Destination:
    """Where the route layer sends one request."""

    namespace: str
    service: str
    choose: Callable[[frozenset[str]], Endpoint | str]  # endpoints already tried -> endpoint or 503 reason
    target: bytes  # origin-form path and query for the endpoint (gateway endpoints get their prefix added)
    timeout_s: float
    authority: str
    src_cluster: str
    src_identity: str = ""


class Relay:
    def __init__(self, *, cluster: str, direction: str, health: EndpointHealth, metrics: Metrics,
                 tap: TapHub, pools: Pools, inbound_tls: bool = False) -> None:
        self.cluster = cluster
        self.direction = direction
        self.health = health
        self.metrics = metrics
        self.tap = tap
        self.pools = pools
        self.inbound_tls = inbound_tls
        self._plain_hop = [(SRC_CLUSTER_HEADER, cluster.encode())]
        self._ids = itertools.count(1)

    async def relay(self, req: Request, resp: Response, dest: Destination) -> None:
        t0 = perf_counter()
        tried: frozenset[str] = frozenset()
        first: tuple[Outcome, Endpoint, TapEvent | None] | None = None
        # a body that came whole with the head is kept, so that a retry can send it again
        held = req.body.take_complete() if req.has_body else b""
        while True:
            ep = dest.choose(tried)
            if isinstance(ep, str):
                if first is None:
                    self._answer(req, resp, dest, None, None, 503, ep, t0)
                else:  # the retry found no other endpoint: report the first failure
                    self._answer_failure(req, resp, dest, *first, t0)
                return
            out, event = await self._attempt(req, resp, dest, ep, t0, held)
            if out.status:
                return
            if first is None and out.retryable and req.method in IDEMPOTENT:
                if event is not None:
                    self._tap_end(event, 0, t0, 0, out.error, None)
                first = (out, ep, None)
                tried = tried | {ep.address}
                continue
            self._answer_failure(req, resp, dest, out, ep, event, t0)
            return

    async def _attempt(self, req: Request, resp: Response, dest: Destination, ep: Endpoint,
                       t0: float, held: bytes | None) -> tuple[Outcome, TapEvent | None]:
        tls = self.pools.uses_tls(ep)
        target = dest.target
        extra: list[tuple[bytes, bytes]] | tuple = ()
        if ep.gateway:
            target = ep.path_prefix.encode() + target
            if not tls:
                extra = self._plain_hop
                sa = req.header(CLIENT_SA_HEADER)
                if sa:
                    extra = [*extra, (SRC_SA_HEADER, sa)]
        event = None
        on_head = None
        if self.tap.active:
            event = self._event(req, dest, ep, tls)
            self.tap.publish(event)
            on_head = lambda status: self._tap_head(event, status, t0)  # noqa: E731
        health = self.health
        health.start(ep)
        try:
            out = await forward(self.pools, ep, req, resp, target=target, timeout_s=dest.timeout_s, held=held,
                                extra=extra, drop=_DROP, on_head=on_head)
        except asyncio.CancelledError:
            # The client left. Not the endpoint's fault, but the time it had taken so far
            # is a lower bound of its latency: close the attempt as answered.
            health.success(ep, (perf_counter() - t0) * 1000.0)
            raise
        if out.connect_failed:
            health.connect_failed(ep)
        elif out.status == 0 or out.status >= 500 or (out.error and not out.client_gone):
            health.failure(ep, out.ttfb_ms)
        else:
            health.success(ep, out.ttfb_ms)
        if out.status:
            self._account(dest, ep.cluster, tls, out.status, t0, out.error and "stream")
            if event is not None:
                self._tap_end(event, out.status, t0, out.bytes, out.error, out.ttfb_ms)
        return out, event

    def _answer_failure(self, req: Request, resp: Response, dest: Destination, out: Outcome, ep: Endpoint,
                        event: TapEvent | None, t0: float) -> None:
        status = 504 if out.timed_out else 502
        self._answer(req, resp, dest, ep, event, status, out.error, t0)

    def _answer(self, req: Request, resp: Response, dest: Destination, ep: Endpoint | None,
                event: TapEvent | None, status: int, reason: str, t0: float) -> None:
        """Answer the client ourselves (no endpoint answered) and account for it."""
        resp.send_text(status, reason)
        tls = ep is not None and self.pools.uses_tls(ep)
        self._account(dest, ep.cluster if ep is not None else "", tls, status, t0,
                      "" if status == 503 else "upstream")
        if self.tap.active:
            if event is None:
                event = self._event(req, dest, ep, tls)
                self.tap.publish(event)
            self._tap_end(event, status, t0, 0, reason, None)

    def _account(self, dest: Destination, dst_cluster: str, tls: bool, status: int, t0: float,
                 error: str) -> None:
        series = self.metrics.series(direction=self.direction, src_cluster=dest.src_cluster,
                                     dst_cluster=dst_cluster, dst_namespace=dest.namespace,
                                     dst_service=dest.service, tls=tls or self.inbound_tls)
        series.request()
        series.response(status, (perf_counter() - t0) * 1000.0, error=error)

    # -- tap -------------------------------------------------------------------------

    def _event(self, req: Request, dest: Destination, ep: Endpoint | None, tls: bool) -> TapEvent:
        return TapEvent(
            id=f"{self.cluster}:{self.direction}:{next(self._ids)}",
            kind="request_init",
            direction=self.direction,
            cluster=self.cluster,
            src_cluster=dest.src_cluster,
            src_identity=dest.src_identity,
            dst_cluster=ep.cluster if ep is not None else "",
            dst_namespace=dest.namespace,
            dst_service=dest.service,
            dst_endpoint=ep.address if ep is not None else "",
            method=req.method.decode("latin-1"),
            scheme="https" if self.inbound_tls else "http",
            authority=dest.authority,
            path=req.target.decode("latin-1"),
            tls=tls or self.inbound_tls,
            ts=time.time(),
        )

    def _tap_head(self, event: TapEvent, status: int, t0: float) -> None:
        if self.tap.active:
            ms = (perf_counter() - t0) * 1000.0
            self.tap.publish(_derive(event, "response_init", status=status, latency_ms=ms))

    def _tap_end(self, event: TapEvent, status: int, t0: float, nbytes: int, error: str,
                 ttfb_ms: float | None) -> None:
        if self.tap.active:
            ms = (perf_counter() - t0) * 1000.0
            self.tap.publish(_derive(event, "response_end", status=status, duration_ms=ms,
                                     latency_ms=ms if ttfb_ms is None else ttfb_ms, bytes=nbytes, error=error))


def _derive(event: TapEvent, kind: str, **changes: object) -> TapEvent:
    d = event.to_dict()
    d.update(kind=kind, ts=time.time(), **changes)
    return TapEvent(**d)
