"""The TLS identities of one proxy process, read from its `--tls-dir`:

    <tls-dir>/<namespace>/<service-account>/cert.pem, key.pem, bundle.pem

(the layout the controller's authority writes under <state>/identity/leaves/<cluster>/).
`meshtui-system/gateway` is the gateway's identity: the server side of every cross-cluster
hop, which requires a client certificate from the bundle. Every other directory is a client
identity: the outbound proxy presents the one of the caller's service account (the
x-meshtui-service-account header, `default` when absent) when it connects to a remote
gateway, and checks that the gateway presents the identity the route names
(`Endpoint.server_identity`, verified through its DNS SAN).

`reload()` rebuilds the contexts of the identities whose files were replaced and picks up
new ones (a new service account); a broken file keeps the identity's previous contexts and
is reported in `describe()`. Connections already open keep the context they were made with.
"""
from __future__ import annotations

import ssl
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from proxy.config import Endpoint
from proxy.mux import MUX_ALPN

from .files import BUNDLE_FILE, CERT_FILE, KEY_FILE, CertificateFileError
from .names import InvalidIdentity, identity_from_uri
from .summary import summarize
from .tls import ReloadingTLS

GATEWAY_NAMESPACE = "meshtui-system"
GATEWAY_ACCOUNT = "gateway"
DEFAULT_ACCOUNT = "default"
# The gateway's protocols (proxy/protocols.py chooses by ALPN): HTTP/1.1 streams of a mux
# session (the outbound proxies' HTTP/1.1, proxy/mux), HTTP/2, HTTP/1.1 and opaque TCP for
# one export (h2-beyond).
GATEWAY_ALPN = (MUX_ALPN, "h2", "http/1.1", "meshtui-tcp")
# What the outbound proxy's HTTP/1.1 pool offers a gateway: streams of one mux session.
POOL_ALPN = (MUX_ALPN,)

# The client identity of the request being handled: set by the outbound proxy for each
# request (each runs in its own task, so the value never leaks into another request) and
# read by `tls_for` when the relay connects to a gateway on that request's behalf.
CALLER_TLS: ContextVar[ReloadingTLS | None] = ContextVar("meshtui_caller_tls", default=None)


class TLSDirError(ValueError):
    """The --tls-dir cannot serve this proxy; the message names the directory and what is missing."""


@dataclass(frozen=True, slots=True)
class _Paths:
    cert_path: Path
    key_path: Path
    bundle_path: Path

    @classmethod
    def of(cls, directory: Path) -> "_Paths":
        return cls(directory / CERT_FILE, directory / KEY_FILE, directory / BUNDLE_FILE)


@lru_cache(maxsize=1024)
def server_name(server_identity: str) -> str:
    """The DNS SAN a gateway of this SPIFFE identity presents; '' when it is not one."""
    try:
        return identity_from_uri(server_identity).dns_name
    except InvalidIdentity:
        return ""


@dataclass(slots=True)
class _Loaded:
    tls: ReloadingTLS | None  # None while the identity's files never loaded
    summary: dict[str, Any]
    error: str = ""


class ProxyIdentities:
    def __init__(self, tls_dir: str | Path, *, gateway: bool, outbound: bool) -> None:
        """`gateway`/`outbound`: which listeners this process runs; each needs its identity
        (meshtui-system/gateway, resp. default/default) in the directory."""
        self.dir = Path(tls_dir)
        if not self.dir.is_dir():
            raise TLSDirError(f"--tls-dir {self.dir}: not a directory")
        self._loaded: dict[str, _Loaded] = {}
        self._clients: dict[bytes, ReloadingTLS] = {}  # by b"namespace/sa" and by b"sa"
        self._default: ReloadingTLS | None = None
        self.gateway_handshakes = 0
        self.reloads = 0
        self.reload()
        wanted = [f"{GATEWAY_NAMESPACE}/{GATEWAY_ACCOUNT}"] if gateway else []
        wanted += [f"{DEFAULT_ACCOUNT}/{DEFAULT_ACCOUNT}"] if outbound else []
        for name in wanted:
            loaded = self._loaded.get(name)
            if loaded is None or loaded.error:
                why = loaded.error if loaded is not None else f"no {name}/{CERT_FILE}"
                raise TLSDirError(f"--tls-dir {self.dir}: the identity {name} is unusable: {why}")
        self.gateway: ReloadingTLS | None = None
        if gateway:
            self.gateway = self._loaded[f"{GATEWAY_NAMESPACE}/{GATEWAY_ACCOUNT}"].tls
            switch = self.gateway.listener_context.sni_callback
            assert switch is not None

            def counted(ssl_object: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
                self.gateway_handshakes += 1
                switch(ssl_object, name, ctx)

            self.gateway.listener_context.sni_callback = counted

    @property
    def gateway_context(self) -> ssl.SSLContext | None:
        """The gateway listener's context: each handshake switches to the latest server context."""
        return self.gateway.listener_context if self.gateway is not None else None

    def client(self, account: bytes) -> ReloadingTLS | None:
        """The client identity for a caller's service account (`sa` or `namespace/sa`)."""
        return self._clients.get(account)

    def client_accounts(self) -> list[str]:
        return sorted({k.decode() for k in self._clients if b"/" not in k})

    def tls_for(self, ep: Endpoint) -> tuple[ssl.SSLContext | None, str]:
        """The pool's hook: mTLS with the caller's identity to gateways, plain TCP to local endpoints."""
        if not ep.gateway:
            return None, ""
        tls = CALLER_TLS.get() or self._default
        if tls is None:  # a gateway-only process: it never relays to another gateway
            return None, ""
        return tls.client, (server_name(ep.server_identity) if ep.server_identity else "") or ep.host

    def reload(self) -> list[str]:
        """Re-read the directory; returns the identities (namespace/sa) whose contexts changed."""
        changed = []
        found = {f"{p.parent.parent.name}/{p.parent.name}": p.parent for p in sorted(self.dir.glob(f"*/*/{CERT_FILE}"))}
        for name in [n for n in self._loaded if n not in found]:
            del self._loaded[name]
            changed.append(name)
        for name, directory in found.items():
            paths = _Paths.of(directory)
            loaded = self._loaded.get(name)
            try:
                if loaded is None or loaded.tls is None:
                    self._loaded[name] = _Loaded(ReloadingTLS(paths, server_alpn=GATEWAY_ALPN, client_alpn=POOL_ALPN),
                                                 summarize(paths.cert_path, paths.bundle_path))
                    changed.append(name)
                elif loaded.tls.reload() or loaded.error:
                    loaded.summary, loaded.error = summarize(paths.cert_path, paths.bundle_path), ""
                    changed.append(name)
            except (ssl.SSLError, OSError, CertificateFileError) as exc:
                self._loaded.setdefault(name, _Loaded(None, {})).error = str(exc)
        clients: dict[bytes, ReloadingTLS] = {}
        for name, loaded in sorted(self._loaded.items(), reverse=True):
            namespace, account = name.split("/")
            if loaded.tls is None or (namespace, account) == (GATEWAY_NAMESPACE, GATEWAY_ACCOUNT):
                continue
            clients[name.encode()] = loaded.tls
            # a bare account name means the account of that name in the first namespace (sorted)
            clients[account.encode()] = loaded.tls
        self._clients = clients
        self._default = clients.get(DEFAULT_ACCOUNT.encode())
        self.reloads += 1
        return changed

    def describe(self) -> dict[str, Any]:
        anchors: list[str] = []
        identities = {}
        for name, loaded in sorted(self._loaded.items()):
            identities[name] = {**loaded.summary, **({"error": loaded.error} if loaded.error else {})}
            for fp in loaded.summary.get("trust_anchors", ()):
                if fp not in anchors:
                    anchors.append(fp)
        return {"dir": str(self.dir), "trust_anchors": anchors, "identities": identities,
                "gateway_handshakes": self.gateway_handshakes, "reloads": self.reloads}
