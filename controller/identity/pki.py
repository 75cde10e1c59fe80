"""Certificate building, no I/O: trust anchors, per-cluster issuers, workload leaves (EC P-256, ECDSA-SHA256)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from proxy.tls.names import Identity

_ORG = "meshtui"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, not_before: datetime, not_after: datetime) -> x509.CertificateBuilder:
    if not_after <= not_before:
        raise ValueError(f"certificate validity is empty: not_after {not_after.isoformat()} <= not_before {not_before.isoformat()}")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )


def _authority_key_id(issuer: KeyPair) -> x509.AuthorityKeyIdentifier:
    ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def make_anchor(trust_domain: str, not_before: datetime, not_after: datetime) -> KeyPair:
    """A self-signed root CA that may sign issuers (path length 1). Each anchor gets a distinct
    subject so that old and new anchors in one bundle never shadow each other."""
    key = new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
        x509.NameAttribute(NameOID.COMMON_NAME, f"meshtui trust anchor {trust_domain} {secrets.token_hex(4)}"),
    ])
    cert = (
        _builder(name, name, key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def make_issuer(anchor: KeyPair, trust_domain: str, cluster: str, not_before: datetime, not_after: datetime) -> KeyPair:
    """An intermediate CA for one cluster, signed by the anchor, that may sign leaves only (path length 0)."""
    key = new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, cluster),
        x509.NameAttribute(NameOID.COMMON_NAME, f"meshtui issuer {cluster}.{trust_domain}"),
    ])
    cert = (
        _builder(name, anchor.cert.subject, key, not_before, min(not_after, anchor.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(_authority_key_id(anchor), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]), critical=False)
        .sign(anchor.key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def make_leaf(issuer: KeyPair, identity: Identity, not_before: datetime, ttl: timedelta) -> KeyPair:
    """A workload certificate for both TLS sides: exactly one URI SAN (the SPIFFE ID, as the
    X509-SVID spec requires) and one DNS SAN; never outlives its issuer."""
    key = new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
        x509.NameAttribute(NameOID.COMMON_NAME, identity.dns_name),
    ])
    not_after = min(not_before + ttl, issuer.cert.not_valid_after_utc)
    cert = (
        _builder(name, issuer.cert.subject, key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(_authority_key_id(issuer), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri), x509.DNSName(identity.dns_name)]),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def trust_domain_of(anchor: x509.Certificate) -> str | None:
    """The trust domain an anchor (or issuer) names in its one `spiffe://<trust-domain>` URI SAN."""
    try:
        san = anchor.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1 or not uris[0].startswith("spiffe://") or "/" in uris[0].removeprefix("spiffe://"):
        return None
    return uris[0].removeprefix("spiffe://")


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when `issuer`'s name and key signed `cert` (validity dates not considered)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def key_matches(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    return cert.public_key() == key.public_key()
