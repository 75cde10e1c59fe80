"""Workload identity for the federation: trust anchors, per-cluster issuers, short-lived
SPIFFE leaf certificates on disk, and the `ssl` contexts proxies use for mTLS.

The identity names, certificate files and `ssl` contexts live in the data plane (proxy/tls/,
which never imports the controller) and are re-exported here; the certificate authority, its
lock and its reports are the controller's."""
from proxy.tls.files import CertificateFileError, LeafFiles, read_chain
from proxy.tls.names import DEFAULT_TRUST_DOMAIN, Identity, InvalidIdentity, identity_from_uri
from proxy.tls.peer import identity_from_cert, identity_from_peercert
from proxy.tls.tls import ReloadingTLS, client_context, server_context

from .authority import IdentityAuthority
from .describe import CertInfo, describe
from .lock import AuthorityLock, authority_lock
from .renewal import needs_renewal, renew_at
from .report import IdentityReport, read_report
from .rotation import rotate_anchor

__all__ = [
    "DEFAULT_TRUST_DOMAIN", "AuthorityLock", "CertInfo", "CertificateFileError", "Identity", "IdentityAuthority", "IdentityReport",
    "InvalidIdentity", "LeafFiles", "ReloadingTLS", "authority_lock", "client_context", "describe",
    "identity_from_cert", "identity_from_peercert", "identity_from_uri", "needs_renewal", "read_chain",
    "read_report", "renew_at", "rotate_anchor", "server_context",
]
