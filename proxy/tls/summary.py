"""What the files of one identity hold (GET /tls, `meshtui check`), read with the `ssl` module
alone: a proxy process never imports `cryptography` (8 MiB of memory) to describe the files it
serves with.

OpenSSL decodes the certificates: those of a CA through `SSLContext.get_ca_certs()`, the leaf
(the first certificate of cert.pem) through `ssl._ssl._test_decode_cert`, the one way the
standard library offers to decode a certificate that is not a CA's (private: CPython's
own tests use it). The anchor a chain leads to is the bundle certificate whose subject
is the issuer of the chain's top: anchors carry a random part in their names, so two never
share one, and the signatures themselves are checked by every handshake, not here."""
from __future__ import annotations

import hashlib
import re
import ssl
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .files import CertificateFileError
from .peer import identity_from_peercert

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def pem_certificates(path: Path) -> list[bytes]:
    """The certificates of a PEM file as DER, in file order; CertificateFileError naming the file."""
    try:
        text = Path(path).read_text("ascii")
    except (OSError, UnicodeDecodeError) as err:
        raise CertificateFileError(f"cannot read certificate file {path}: {getattr(err, 'strerror', None) or err}"
                                   ) from err
    try:
        ders = [ssl.PEM_cert_to_DER_cert(block) for block in _PEM.findall(text)]
    except ValueError as err:
        raise CertificateFileError(f"certificate file {path} holds an invalid PEM certificate: {err}") from err
    if not ders:
        raise CertificateFileError(f"certificate file {path} holds no PEM certificate")
    return ders


def _authorities(path: Path) -> dict[bytes, dict[str, Any]]:
    """The CA certificates of a PEM file decoded (as `getpeercert()` would), by DER."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cafile=path)
    except ssl.SSLError as err:
        raise CertificateFileError(f"certificate file {path} holds an invalid certificate: {err}") from err
    return dict(zip(ctx.get_ca_certs(binary_form=True), ctx.get_ca_certs()))


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _iso(openssl_time: str) -> str:
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(openssl_time), timezone.utc).isoformat()


def summarize(cert_path: Path, bundle_path: Path) -> dict[str, Any]:
    """The leaf's identity, serial and validity, the anchor its chain leads to and the trusted anchors
    (fingerprints: SHA-256 of the DER certificate)."""
    chain = pem_certificates(cert_path)
    anchors = pem_certificates(bundle_path)
    try:
        leaf = ssl._ssl._test_decode_cert(str(cert_path))  # type: ignore[attr-defined]
    except ssl.SSLError as err:
        raise CertificateFileError(f"certificate file {cert_path} holds an invalid certificate: {err}") from err
    top = _authorities(cert_path).get(chain[-1]) if len(chain) > 1 else leaf
    subjects = _authorities(bundle_path)
    anchor = next((fingerprint(der) for der in anchors
                   if top is not None and subjects.get(der, {}).get("subject") == top["issuer"]), None)
    ident = identity_from_peercert(leaf)
    return {
        "identity": ident.uri if ident else None,
        "serial": format(int(leaf["serialNumber"], 16), "x"),
        "not_before": _iso(leaf["notBefore"]),
        "not_after": _iso(leaf["notAfter"]),
        "anchor": anchor,
        "trust_anchors": [fingerprint(der) for der in anchors],
    }
