"""HTTP/1.1 engine of the data plane: server protocol, upstream client, pools, forwarding."""
from proxy.http1.forward import Outcome, forward
from proxy.http1.pool import Pools, TlsFor
from proxy.http1.server import HttpServer, Request, Response

__all__ = ["HttpServer", "Outcome", "Pools", "Request", "Response", "TlsFor", "forward"]
