"""`ssl` contexts for mTLS between proxies, built from an identity's files.

Both sides present their leaf (cert.pem carries leaf + issuer, so peers need only the
anchors) and verify the peer against bundle.pem. Contexts are cheap to build: reloading
means building fresh ones. Connections already open (pooled) keep the context they were
made with and keep working until they close; new connections use the renewed leaf and
bundle. `ReloadingTLS` wraps that for a long-running listener and client pool."""
from __future__ import annotations

import os
import ssl
import time
from pathlib import Path
from typing import Protocol, Sequence

from proxy.mux import MUX_ALPN

SERVER_ALPN = ("h2", "http/1.1")
CLIENT_ALPN = ("http/1.1",)

# cert.pem and key.pem are each replaced atomically, but not together: a load that lands
# between the two renames sees a mismatched pair and is retried.
_LOAD_ATTEMPTS = 5
_LOAD_RETRY_S = 0.01


class TLSFiles(Protocol):
    cert_path: Path
    key_path: Path
    bundle_path: Path


def _load(ctx: ssl.SSLContext, files: TLSFiles) -> None:
    for attempt in range(_LOAD_ATTEMPTS):
        try:
            ctx.load_cert_chain(files.cert_path, files.key_path)
            break
        except ssl.SSLError as err:
            if attempt == _LOAD_ATTEMPTS - 1:
                raise ssl.SSLError(err.errno, f"cannot load {files.cert_path} with {files.key_path}: {err}") from err
            time.sleep(_LOAD_RETRY_S)
    try:
        ctx.load_verify_locations(cafile=files.bundle_path)
    except ssl.SSLError as err:
        raise ssl.SSLError(err.errno, f"cannot load trust bundle {files.bundle_path}: {err}") from err


def server_context(files: TLSFiles, alpn: Sequence[str] = SERVER_ALPN) -> ssl.SSLContext:
    """TLS 1.2+, presents the leaf, requires a client certificate that chains to the bundle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(list(alpn))
    _load(ctx, files)
    return ctx


class MuxClientContext(ssl.SSLContext):
    """A client context that offers only MUX_ALPN: its connections are mux sessions
    (proxy/mux), which the upstream pool opens streams on instead of connections."""


def client_context(files: TLSFiles, alpn: Sequence[str] = CLIENT_ALPN) -> ssl.SSLContext:
    """TLS 1.2+, presents the leaf, verifies the server against the bundle and checks the
    server's DNS SAN: connect with `server_hostname=Identity.dns_name` of the expected peer.
    Offering only MUX_ALPN makes it a MuxClientContext."""
    kind = MuxClientContext if tuple(alpn) == (MUX_ALPN,) else ssl.SSLContext
    ctx = kind(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(list(alpn))
    _load(ctx, files)
    return ctx


def _signature(files: TLSFiles) -> tuple:
    sig = []
    for path in (files.cert_path, files.key_path, files.bundle_path):
        try:
            st = os.stat(path)  # follows the bundle symlink
        except OSError:
            sig.append(None)
            continue
        sig.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(sig)


class ReloadingTLS:
    """Current server and client contexts for one identity, rebuilt when its files change.

    Give `listener_context` to the server once (e.g. `asyncio.start_server(ssl=...)`): each
    new handshake is switched to the latest server context, so the listener never restarts.
    Take `client` anew for each new connection. Call `reload()` after a renewal or a bundle
    change (or periodically): it rebuilds only when a file was replaced, and on a bad file
    raises ssl.SSLError and keeps the previous contexts."""

    def __init__(self, files: TLSFiles, server_alpn: Sequence[str] = SERVER_ALPN, client_alpn: Sequence[str] = CLIENT_ALPN):
        self.files = files
        self._server_alpn, self._client_alpn = tuple(server_alpn), tuple(client_alpn)
        self._signature: tuple = ()
        self.server: ssl.SSLContext
        self.client: ssl.SSLContext
        self.reload()
        self.listener_context = server_context(files, self._server_alpn)
        self.listener_context.sni_callback = self._switch

    def _switch(self, ssl_object: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        ssl_object.context = self.server

    def reload(self) -> bool:
        signature = _signature(self.files)
        if signature == self._signature:
            return False
        server = server_context(self.files, self._server_alpn)
        client = client_context(self.files, self._client_alpn)
        self.server, self.client, self._signature = server, client, signature
        return True
