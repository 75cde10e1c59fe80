"""Read the SPIFFE identity a certificate or a verified TLS peer carries."""
from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from .names import Identity, InvalidIdentity, identity_from_uri

if TYPE_CHECKING:
    from cryptography import x509


def _one_identity(uris: list[str], trust_domain: str | None) -> Identity | None:
    # The X509-SVID spec: exactly one URI SAN; anything else is not a workload identity.
    if len(uris) != 1:
        return None
    try:
        ident = identity_from_uri(uris[0])
    except InvalidIdentity:
        return None
    if trust_domain is not None and ident.trust_domain != trust_domain:
        return None
    return ident


def identity_from_cert(cert: x509.Certificate, trust_domain: str | None = None) -> Identity | None:
    from cryptography import x509  # only when certificates are read: a plain proxy never imports it

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    return _one_identity(san.get_values_for_type(x509.UniformResourceIdentifier), trust_domain)


def identity_from_peercert(peer: ssl.SSLObject | ssl.SSLSocket | dict[str, Any] | bytes | None, trust_domain: str | None = None) -> Identity | None:
    """The caller's identity on a TLS connection, or None when it has no valid one.

    `peer` is one of: the `ssl_object` of a transport (`transport.get_extra_info('ssl_object')`)
    or an SSLSocket — read through `getpeercert()`, which is only filled in when the
    context verified the peer, so an unverified peer never yields an identity; the dict
    `getpeercert()` returned; or a DER certificate (`getpeercert(binary_form=True)`) the
    caller has verified. With `trust_domain`, an identity from another trust domain is None."""
    if peer is None:
        return None
    if isinstance(peer, (ssl.SSLObject, ssl.SSLSocket)):
        peer = peer.getpeercert()
    if isinstance(peer, (bytes, bytearray, memoryview)):
        from cryptography import x509

        try:
            cert = x509.load_der_x509_certificate(bytes(peer))
        except ValueError:
            return None
        return identity_from_cert(cert, trust_domain)
    if isinstance(peer, dict):
        uris = [value for kind, value in peer.get("subjectAltName", ()) if kind == "URI"]
        return _one_identity(uris, trust_domain)
    raise TypeError(f"identity_from_peercert: expected an SSL object, a getpeercert() dict or DER bytes, got {type(peer).__name__}")
