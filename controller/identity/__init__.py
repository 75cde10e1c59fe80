"""Workload identity for the federation: trust anchors, per-cluster issuers, short-lived
SPIFFE leaf certificates on disk, and the `ssl` contexts proxies use for mTLS."""
from .authority import IdentityAuthority
from .describe import CertInfo, describe
from .files import CertificateFileError, LeafFiles
from .names import DEFAULT_TRUST_DOMAIN, Identity, InvalidIdentity, identity_from_uri
from .peer import identity_from_cert, identity_from_peercert
from .renewal import needs_renewal, renew_at
from .tls import ReloadingTLS, client_context, server_context

__all__ = [
    "DEFAULT_TRUST_DOMAIN", "CertInfo", "CertificateFileError", "Identity", "IdentityAuthority", "InvalidIdentity",
    "LeafFiles", "ReloadingTLS", "client_context", "describe", "identity_from_cert", "identity_from_peercert",
    "identity_from_uri", "needs_renewal", "renew_at", "server_context",
]
