"""HTTP/2 request and response heads as the proxy reads and rewrites them (pure).

Connection-specific fields (RFC 9113 8.2.2) never cross the proxy; `te` only as
`trailers`. The mesh's own headers (the client's service-account claim, plain-mode
caller headers) are taken off and, where needed, set again by the proxy.
"""
from __future__ import annotations

from dataclasses import dataclass

from proxy.http1.relay import CLIENT_SA_HEADER, SRC_CLUSTER_HEADER, SRC_SA_HEADER
from proxy.http2.grpc import is_grpc, parse_timeout

Header = tuple[bytes, bytes]

_CONNECTION_SPECIFIC = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                                  b"upgrade", b"host"))
_MESH = frozenset((CLIENT_SA_HEADER, SRC_CLUSTER_HEADER, SRC_SA_HEADER))
_DROPPED = _CONNECTION_SPECIFIC | _MESH


class BadRequest(ValueError):
    """A request head the proxy refuses (400); the message says why."""


@dataclass(slots=True)
class H2Request:
    method: bytes
    scheme: bytes
    authority: bytes
    path: bytes
    headers: list[Header]  # regular fields to pass on
    grpc: bool
    deadline_s: float | None  # grpc-timeout, when the client set one
    account: bytes  # x-meshtui-service-account (b"" when absent)
    src_cluster: bytes  # plain-mode caller headers (gateway side)
    src_account: bytes | None


def parse_request(head: tuple[Header, ...] | list[Header]) -> H2Request:
    """Raises BadRequest."""
    method = scheme = authority = path = b""
    headers: list[Header] = []
    grpc = False
    deadline: float | None = None
    account = src_cluster = b""
    src_account: bytes | None = None
    host = b""
    for name, value in head:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name == b":scheme":
                scheme = value
            continue
        if name in _DROPPED:
            if name == CLIENT_SA_HEADER:
                account = value
            elif name == SRC_CLUSTER_HEADER:
                src_cluster = value
            elif name == SRC_SA_HEADER:
                src_account = value
            elif name == b"host":
                host = value
            continue
        if name == b"te" and value != b"trailers":
            continue
        if name == b"content-type":
            grpc = is_grpc(value)
        elif name == b"grpc-timeout":
            try:
                deadline = parse_timeout(value)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        headers.append((name, value))
    if not method:
        raise BadRequest("request has no :method")
    if method == b"CONNECT":
        raise BadRequest("CONNECT is not supported over HTTP/2 by this proxy")
    if not path:
        raise BadRequest("request has no :path")
    authority = authority or host
    if not authority:
        raise BadRequest("request has no :authority: send the service name (svc.ns[:port])")
    return H2Request(method, scheme or b"http", authority, path, headers, grpc, deadline, account, src_cluster,
                     src_account)


def request_head(req: H2Request, path: bytes, extra: list[Header]) -> list[Header]:
    """The head sent upstream: pseudo-fields first, the client's fields, then `extra`."""
    return [(b":method", req.method), (b":scheme", req.scheme), (b":authority", req.authority), (b":path", path),
            *req.headers, *extra]


def response_head(head: tuple[Header, ...] | list[Header]) -> tuple[int, list[Header]]:
    """(status, head to pass on) of an upstream response."""
    status = 0
    out: list[Header] = []
    for name, value in head:
        if name == b":status":
            status = int(value) if value.isdigit() else 0
        elif name in _CONNECTION_SPECIFIC:
            continue
        out.append((name, value))
    return status, out
