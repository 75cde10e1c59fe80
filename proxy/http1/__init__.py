"""HTTP/1.1 engine of the data plane: server protocol, upstream client, pools, forwarding."""
from proxy.http1.forward import Forward
from proxy.http1.pool import Pools, TlsFor
from proxy.http1.server import HttpServer, Request, Response

__all__ = ["Forward", "HttpServer", "Pools", "Request", "Response", "TlsFor"]
