"""mTLS for the data plane: SPIFFE workload identities, the certificate files of one identity,
`ssl` contexts that reload when those files are replaced, and the identities of one proxy
process (its gateway and the client identities of its callers' service accounts).

Only the standard library and `cryptography`, the latter where certificates are read as objects
(files.py, peer.py) for the controller's certificate authority (controller/identity), which
builds on these modules, never the other way round: a proxy process never imports it."""
from .files import BUNDLE_FILE, CERT_FILE, KEY_FILE, CertificateFileError, LeafFiles, read_chain
from .identities import CALLER_TLS, DEFAULT_ACCOUNT, GATEWAY_ACCOUNT, GATEWAY_NAMESPACE, ProxyIdentities, TLSDirError
from .names import DEFAULT_TRUST_DOMAIN, Identity, InvalidIdentity, identity_from_uri
from .peer import identity_from_cert, identity_from_peercert
from .tls import ReloadingTLS, client_context, server_context

__all__ = [
    "BUNDLE_FILE", "CALLER_TLS", "CERT_FILE", "DEFAULT_ACCOUNT", "DEFAULT_TRUST_DOMAIN", "GATEWAY_ACCOUNT",
    "GATEWAY_NAMESPACE", "KEY_FILE", "CertificateFileError", "Identity", "InvalidIdentity", "LeafFiles",
    "ProxyIdentities", "ReloadingTLS", "TLSDirError", "client_context", "identity_from_cert",
    "identity_from_peercert", "identity_from_uri", "read_chain", "server_context",
]
