"""Where each HTTP/2 stream goes: the outbound proxy's and the gateway's decisions, as in
proxy/outbound.py and proxy/gateway.py for HTTP/1.1, per stream.

Only routes (exports) whose port is declared `http2` or `grpc` are served over HTTP/2:
their endpoints are spoken to in HTTP/2 (prior knowledge h2c to local endpoints, h2 over
mTLS with ALPN to other clusters' gateways). A stream for an HTTP/1.1 route is refused
with a message saying so; an HTTP/1.1 client of such a route goes through the HTTP/1.1
relay unchanged.
"""
from __future__ import annotations

from dataclasses import replace

from proxy.config import ServiceRoute
from proxy.gateway import refusal
from proxy.http1.relay import Destination
from proxy.http2 import grpc
from proxy.http2.connection import Headers, StreamHandler
from proxy.http2.messages import BadRequest, parse_request
from proxy.http2.relay import H2Relay
from proxy.http2.server import H2ServerConnection, answered
from proxy.outbound import RouteSource
from proxy.routing.table import RouteTable
from proxy.tls import ProxyIdentities, identity_from_peercert

H2_PROTOCOLS = frozenset(("http2", "grpc"))
_MAX_DESTINATIONS = 4096
_TEXT = (b"content-type", b"text/plain; charset=utf-8")


def refuse(conn: H2ServerConnection, sid: int, status: int, reason: str, grpc_call: bool) -> StreamHandler:
    """Answer a stream the proxy will not relay: a gRPC error for gRPC calls, else text."""
    if grpc_call:
        conn.respond(sid, grpc.error_response(grpc.code_for_http(status), reason))
    else:
        conn.respond(sid, [(b":status", b"%d" % status), _TEXT], reason.encode() + b"\n")
    return answered(conn, sid)


def _is_grpc_head(head: Headers) -> bool:
    return any(n == b"content-type" and grpc.is_grpc(v) for n, v in head)


class OutboundH2:
    def __init__(self, *, cluster: str, routes: RouteSource, relay: H2Relay,
                 identities: ProxyIdentities | None = None) -> None:
        self.cluster = cluster
        self.routes = routes
        self.relay = relay
        self.identities = identities
        self._table: RouteTable | None = None
        self._destinations: dict[bytes, tuple[Destination, ServiceRoute] | str] = {}

    def __call__(self, conn: H2ServerConnection, sid: int, head: Headers, end_stream: bool) -> StreamHandler:
        try:
            req = parse_request(head)
        except BadRequest as exc:
            return refuse(conn, sid, 400, str(exc), _is_grpc_head(head))
        caller = None
        if self.identities is not None:
            account = req.account or b"default"
            caller = self.identities.client(account)
            if caller is None:
                name = account.decode("latin-1")
                return refuse(conn, sid, 403, f"cluster {self.cluster} has no identity for service account {name!r} "
                                              f"(known: {', '.join(self.identities.client_accounts())})", req.grpc)
        found = self._destination(req.authority)
        if isinstance(found, str):
            return refuse(conn, sid, 503, found, req.grpc)
        dest, route = found
        if route.protocol not in H2_PROTOCOLS:
            return refuse(conn, sid, 505, f"{route.name}.{route.namespace}:{route.port} is an HTTP/1.1 service "
                                          f"(appProtocol {route.protocol}): call it over HTTP/1.1, or declare the "
                                          f"port appProtocol http2 or grpc", req.grpc)
        if route.balancer == "hashing":
            peer = conn.transport.get_extra_info("peername")
            key = peer[0].encode() if peer else b""
            choose = self.routes.table.choose
            dest = replace(dest, choose=lambda tried: choose(route, hash_key=key, exclude=tried))
        return self.relay.start(conn, sid, req, dest, end_stream, caller)

    def _destination(self, authority: bytes) -> tuple[Destination, ServiceRoute] | str:
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
                found = Destination(namespace=route.namespace, service=route.name,
                                    choose=lambda tried, route=route: choose(route, exclude=tried),
                                    timeout_s=route.timeout_ms / 1000.0, authority=name,
                                    src_cluster=self.cluster), route
            if len(self._destinations) >= _MAX_DESTINATIONS:
                self._destinations.clear()
            self._destinations[authority] = found
        return found


class GatewayH2:
    def __init__(self, *, cluster: str, routes: RouteSource, relay: H2Relay, tls: bool,
                 timeout_s: float = 30.0) -> None:
        self.cluster = cluster
        self.routes = routes
        self.relay = relay
        self.tls = tls
        self.timeout_s = timeout_s

    def __call__(self, conn: H2ServerConnection, sid: int, head: Headers, end_stream: bool) -> StreamHandler:
        try:
            req = parse_request(head)
        except BadRequest as exc:
            return refuse(conn, sid, 400, str(exc), _is_grpc_head(head))
        table = self.routes.table
        path = req.path.decode("latin-1")
        found = table.gateway_rule(path)
        if found is None:
            return refuse(conn, sid, 404, f"no export at path {path.partition('?')[0]} in cluster {self.cluster}",
                          req.grpc)
        rule, rest = found
        if self.tls:
            ident = conn.peer_identity
            if ident is None:
                ident = conn.peer_identity = identity_from_peercert(conn.transport.get_extra_info("ssl_object")) or ""
            if not ident:
                return refuse(conn, sid, 403, "client certificate carries no SPIFFE identity "
                                              "(spiffe://<trust-domain>/cluster/<c>/ns/<ns>/sa/<sa>)", req.grpc)
            src_cluster, account, identity = ident.cluster, ident.service_account, ident.uri
        else:  # plain-mode fallback: the caller says who it is
            src_cluster = req.src_cluster.decode("latin-1")
            account = req.src_account.decode("latin-1") if req.src_account is not None else None
            identity = ""
        reason = refusal(rule, src_cluster, account)
        if reason is not None:
            return refuse(conn, sid, 403, reason, req.grpc)
        if rule.protocol not in H2_PROTOCOLS:
            return refuse(conn, sid, 505, f"export {rule.service}.{rule.namespace}:{rule.port} is an HTTP/1.1 "
                                          f"service (appProtocol {rule.protocol})", req.grpc)
        hash_key = src_cluster.encode() if rule.balancer == "hashing" else b""
        choose_local = table.choose_local
        dest = Destination(namespace=rule.namespace, service=rule.service,
                           choose=lambda tried: choose_local(rule, hash_key=hash_key, exclude=tried),
                           timeout_s=self.timeout_s, authority=f"{rule.service}.{rule.namespace}:{rule.port}",
                           src_cluster=src_cluster, src_identity=identity)
        req.path = rest.encode("latin-1")
        return self.relay.start(conn, sid, req, dest, end_stream)

