"""The outbound proxy: clients send plain HTTP with a service name as Host
(`svc.ns[:port]`, `svc.ns.svc.cluster.local`, `svc.ns.svc.clusterset.local`);
each request, even on one keep-alive client connection, gets its own endpoint
by the route's policy and balancer. Local endpoints get the request as is;
remote ones go to the exporting cluster's gateway with the export's path
prefix in front of the path.
"""
from __future__ import annotations

from typing import Protocol

from proxy.http1.relay import Destination, Relay
from proxy.http1.server import Request, Response
from proxy.routing.table import RouteTable


class RouteSource(Protocol):
    """Holds the current route table; swapped whole on every config change."""

    table: RouteTable


def split_target(req: Request) -> tuple[str, bytes]:
    """(authority, origin-form target). Accepts the absolute form
    (`GET http://svc.ns/path`) sent by clients that use us as an HTTP proxy."""
    target = req.target
    if target[:7].lower() == b"http://":
        authority, slash, path = target[7:].partition(b"/")
        return authority.decode("latin-1"), slash + path or b"/"
    return req.host.decode("latin-1"), target


class OutboundProxy:
    def __init__(self, *, cluster: str, routes: RouteSource, relay: Relay) -> None:
        self.cluster = cluster
        self.routes = routes
        self.relay = relay

    async def __call__(self, req: Request, resp: Response) -> None:
        authority, target = split_target(req)
        if not authority:
            resp.send_text(400, "request has no Host header: send the service name as Host (svc.ns[:port])")
            return
        table = self.routes.table
        route = table.resolve(authority)
        if route is None:
            resp.send_text(503, f"no route for {authority}: not a service known in cluster {self.cluster}")
            return
        hash_key = req.peer[0].encode() if route.balancer == "hashing" and req.peer else b""
        choose = table.choose

        def pick(tried: frozenset[str]):
            return choose(route, hash_key=hash_key, exclude=tried)

        await self.relay.relay(req, resp, Destination(
            namespace=route.namespace,
            service=route.name,
            choose=pick,
            target=target,
            timeout_s=route.timeout_ms / 1000.0,
            authority=authority,
            src_cluster=self.cluster,
        ))
