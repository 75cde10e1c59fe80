"""TLS origination to services outside the mesh (ExternalService): the client side of a TLS
connection the proxy opens for a plain-text caller, verified against the CA bundle the
route carries (`Endpoint.tls_ca`, else the system's trust store) as `Endpoint.tls_server_name`.

Contexts are cached per (bundle, ALPN): every connection of one external service shares one.
"""
from __future__ import annotations

import ssl
from functools import lru_cache

from proxy.config import Endpoint
from proxy.http1.pool import TlsFor


@lru_cache(maxsize=64)
def origination_context(ca_pem: str, alpn: str) -> ssl.SSLContext:
    """Raises ssl.SSLError when the bundle holds no usable certificate."""
    ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols([alpn])
    return ctx


def origination(ep: Endpoint, alpn: str) -> tuple[ssl.SSLContext, str]:
    """(context, server name) to reach an external endpoint that wants TLS."""
    return origination_context(ep.tls_ca, alpn), ep.tls_server_name or ep.host


def originating(tls_for: TlsFor) -> TlsFor:
    """The HTTP/1.1 pool's `tls_for`, with TLS origination for external endpoints."""
    def choose(ep: Endpoint) -> tuple[ssl.SSLContext | None, str]:
        if ep.originates_tls:
            return origination(ep, "http/1.1")
        return tls_for(ep)
    return choose
