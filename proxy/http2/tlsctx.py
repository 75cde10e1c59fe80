"""Client TLS for protocols other than HTTP/1.1 over the mesh's mTLS: the same identity
(leaf, key, trust bundle) as proxy.tls builds, in a context that offers another ALPN
protocol (`h2`, or `meshtui-tcp` for opaque TCP). A context is derived once per client
context of an identity, so a renewed leaf (a new client context) gets a new one."""
from __future__ import annotations

import ssl

from proxy.config import Endpoint
from proxy.external import origination
from proxy.tls import DEFAULT_ACCOUNT, ProxyIdentities, ReloadingTLS, client_context
from proxy.tls.identities import server_name

TCP_ALPN = "meshtui-tcp"
H2_ALPN = "h2"
_DEFAULT = DEFAULT_ACCOUNT.encode()


class MeshTLS:
    """How to reach an endpoint with one ALPN protocol: (context or None, server name)."""

    def __init__(self, identities: ProxyIdentities | None, alpn: str) -> None:
        self.identities = identities
        self.alpn = alpn
        self._derived: dict[int, tuple[ssl.SSLContext, ssl.SSLContext]] = {}  # id(base) -> (base, derived)

    def caller(self, account: bytes) -> ReloadingTLS | None:
        """The client identity of a caller's service account; None when the cluster has none
        (only meaningful with identities)."""
        assert self.identities is not None
        return self.identities.client(account or _DEFAULT)

    def for_endpoint(self, ep: Endpoint, caller: ReloadingTLS | None) -> tuple[ssl.SSLContext | None, str]:
        """mTLS with the caller's identity to gateways; TLS origination to external services
        (proxy/external.py); plain TCP to local endpoints."""
        if ep.originates_tls:
            return origination(ep, self.alpn)
        if not ep.gateway or self.identities is None:
            return None, ""
        tls = caller or self.identities.client(_DEFAULT)
        if tls is None:
            return None, ""
        return self._context(tls), (server_name(ep.server_identity) if ep.server_identity else "") or ep.host

    def _context(self, tls: ReloadingTLS) -> ssl.SSLContext:
        base = tls.client
        found = self._derived.get(id(base))
        if found is not None and found[0] is base:
            return found[1]
        derived = client_context(tls.files, alpn=(self.alpn,))
        if len(self._derived) > 256:
            self._derived.clear()
        self._derived[id(base)] = (base, derived)
        return derived
