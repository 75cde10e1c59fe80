"""The outbound proxy: clients send plain HTTP with a service name as Host
(`svc.ns[:port]`, `svc.ns.svc.cluster.local`, `svc.ns.svc.clusterset.local`);
each request, even on one keep-alive client connection, gets its own endpoint
by the route's policy and balancer. Local endpoints get the request as is;
remote ones go to the exporting cluster's gateway with the export's path
prefix in front of the path.

With mTLS identities, the caller's service account (the x-meshtui-service-account
header, `default` when absent; never forwarded) chooses the client certificate
presented to remote gateways; an account the cluster has no identity for is refused
with 403.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Final, Protocol

from proxy.http1.relay import CLIENT_SA_HEADER, Destination, Relay
from proxy.http1.express import MESH_HEADER
from proxy.http1.server import HttpServerProtocol, Request, Response
from proxy.config import Endpoint, ServiceRoute
from proxy.routing.table import RouteTable
from proxy.tls import CALLER_TLS, DEFAULT_ACCOUNT, ProxyIdentities

_DEFAULT_ACCOUNT: Final = DEFAULT_ACCOUNT.encode()
_MAX_DESTINATIONS: Final = 4096


class RouteSource(Protocol):
    """Holds the current route table; swapped whole on every config change."""

    table: RouteTable


def split_target(req: Request) -> tuple[bytes, bytes]:
    """(authority, origin-form target). Accepts the absolute form
    (`GET http://svc.ns/path`) sent by clients that use us as an HTTP proxy."""
    target = req.target
    if target[:7].lower() == b"http://":
        authority, slash, path = target[7:].partition(b"/")
        return authority, slash + path or b"/"
    return req.host, target


def _choose_for(choose: Callable[..., Endpoint | str], route: ServiceRoute, tried: frozenset[str]) -> Endpoint | str:
    """A Destination's `choose`, bound to its route by `partial` (mypy cannot type the lambda it was)."""
    return choose(route, exclude=tried)


class OutboundProxy:
    def __init__(self, *, cluster: str, routes: RouteSource, relay: Relay,
                 identities: ProxyIdentities | None = None) -> None:
        self.cluster = cluster
        self.routes = routes
        self.relay = relay
        self.identities = identities
        # per Host, the destination it names in `_table` (or why none): a request
        # with a Host seen before does no name parsing nor route lookup
        self._table: RouteTable | None = None
        self._destinations: dict[bytes, tuple[Destination, ServiceRoute | None] | str] = {}

    def __call__(self, req: Request, resp: Response) -> None:
        authority, target = split_target(req)
        if not authority:
            resp.send_text(400, "request has no Host header: send the service name as Host (svc.ns[:port])")
            return
        if self.identities is not None:
            account = req.header(CLIENT_SA_HEADER) or _DEFAULT_ACCOUNT
            tls = self.identities.client(account)
            if tls is None:
                name = account.decode("latin-1")
                resp.send_text(403, f"cluster {self.cluster} has no identity for service account {name!r} "
                                    f"(known: {', '.join(self.identities.client_accounts())}); a Workload with "
                                    f"serviceAccountName {name} gets one")
                return
            CALLER_TLS.set(tls)
        found = self._destination(authority)
        if isinstance(found, str):
            resp.send_text(503, found)
            return
        dest, hashing = found
        if hashing is not None:  # the route hashes on the client's address: its own choice per request
            key = req.peer[0].encode() if req.peer else b""
            choose = self._table.choose  # type: ignore[union-attr]
            dest = replace(dest, choose=lambda tried: choose(hashing, hash_key=key, exclude=tried))
        self.relay.relay(req, resp, dest, target)

    def express(self, proto: HttpServerProtocol, m: re.Match[bytes], head: bytes) -> bool:
        """The express lane (see proxy/http1/express.py): a simple GET for a destination
        that does not hash, from a caller with the default service account."""
        if MESH_HEADER.search(head) is not None:
            return False
        if self.identities is not None and self.identities.client(_DEFAULT_ACCOUNT) is None:
            return False  # (the general path says why)
        found = self._destination(m["host"])
        if isinstance(found, str) or found[1] is not None:
            return False
        target = m["target"]
        return self.relay.express(proto, found[0], head, head, target, target)

    def _destination(self, authority: bytes) -> tuple[Destination, ServiceRoute | None] | str:
        """Where requests for `authority` go in the current table (and its route when it
        balances by hashing), or why nowhere."""
        table = self.routes.table
        if table is not self._table:
            self._table = table
            self._destinations = {}
        found = self._destinations.get(authority)
        if found is None:
            name = authority.decode("latin-1")
            route = table.resolve(name)
            if route is None:
                found = f"no route for {name}: not a service known in cluster {self.cluster}"
            else:
                choose = table.choose
                found = Destination(
                    namespace=route.namespace,
                    service=route.name,
                    choose=partial(_choose_for, choose, route),
                    timeout_s=route.timeout_ms / 1000.0,
                    authority=name,
                    src_cluster=self.cluster,
                ), route if route.balancer == "hashing" else None
            if len(self._destinations) >= _MAX_DESTINATIONS:
                self._destinations.clear()
            self._destinations[authority] = found
        return found
