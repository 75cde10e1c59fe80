"""HTTP on a service port's listener (proxy/tcp/listeners.py): requests are routed as on the
outbound listener, by their authority (Host or :authority); one whose authority names no
service (`127.0.5.1:8080`, none at all) is for the port's own service, as a request to a
ClusterIP:port would be. On a port several services share, such a request gets 503 naming
them. The handlers wrap the outbound listener's own (HTTP/1.1 with WebSocket upgrades, and
HTTP/2), so tap, metrics and policies are the same.
"""
from __future__ import annotations

from collections.abc import Callable

from proxy.http1.server import Handler, Request, Response
from proxy.http2.connection import Headers
from proxy.http2 import grpc
from proxy.http2.handlers import refuse
from proxy.http2.server import H2ServerConnection
from proxy.outbound import RouteSource
from proxy.tcp.ports import PortPlan

Accept = Callable[[H2ServerConnection, int, Headers, bool], object]


class _PortAuthority:
    def __init__(self, cluster: str, routes: RouteSource, plan: Callable[[], PortPlan | None]) -> None:
        self.cluster = cluster
        self.routes = routes
        self.plan = plan

    def fallback(self, authority: bytes) -> bytes | str | None:
        """None: `authority` names a service; else the authority to use instead, or why
        there is none."""
        if authority and self.routes.table.resolve(authority.decode("latin-1")) is not None:
            return None
        plan = self.plan()
        if plan is None:
            return f"no service listens on this port of cluster {self.cluster} any more"
        route = plan.target
        if route is None:
            return (f"{authority.decode('latin-1') or 'no authority'} names no service, and port {plan.port} of "
                    f"cluster {self.cluster} is shared by {', '.join(plan.services)}: send the service name as Host")
        return f"{route.name}.{route.namespace}:{route.port}".encode()


class PortHttp1(_PortAuthority):
    def __init__(self, inner: Handler, cluster: str, routes: RouteSource, plan: Callable[[], PortPlan | None]) -> None:
        super().__init__(cluster, routes, plan)
        self.inner = inner

    def __call__(self, req: Request, resp: Response):
        if req.target[:7].lower() != b"http://":  # the absolute form names its service itself
            found = self.fallback(req.host)
            if isinstance(found, str):
                resp.send_text(503, found)
                return None
            if found is not None:
                req.host = found
        return self.inner(req, resp)


class PortH2(_PortAuthority):
    def __init__(self, inner: Accept, cluster: str, routes: RouteSource, plan: Callable[[], PortPlan | None]) -> None:
        super().__init__(cluster, routes, plan)
        self.inner = inner

    def __call__(self, conn: H2ServerConnection, sid: int, head: Headers, end_stream: bool):
        authority = next((v for n, v in head if n == b":authority"), b"") or next(
            (v for n, v in head if n == b"host"), b"")
        found = self.fallback(authority)
        if isinstance(found, str):
            return refuse(conn, sid, 503, found, any(n == b"content-type" and grpc.is_grpc(v) for n, v in head))
        if found is not None:
            head = [(b":authority", found), *((n, v) for n, v in head if n not in (b":authority", b"host"))]
        return self.inner(conn, sid, head, end_stream)
