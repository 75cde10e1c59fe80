"""What a certificate file says, for `meshtui check` and `meshtui identity` output."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from proxy.tls.files import BUNDLE_FILE, CertificateFileError, read_chain
from proxy.tls.names import Identity
from proxy.tls.peer import identity_from_cert

from .pki import fingerprint, issued_by


@dataclass(frozen=True, slots=True)
class CertInfo:
    path: Path
    subject: str
    identity: Identity | None
    not_before: datetime
    not_after: datetime
    issuer: str
    # SHA-256 of the bundle anchor the file's chain leads to (the cert itself when self-signed);
    # None when no trusted anchor signed it.
    anchor_fingerprint: str | None
    is_ca: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "subject": self.subject,
            "identity": self.identity.uri if self.identity else None,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "issuer": self.issuer,
            "anchor_fingerprint": self.anchor_fingerprint,
            "is_ca": self.is_ca,
        }


def describe(cert_path: str | Path, bundle_path: str | Path | None = None) -> CertInfo:
    """Describe the first certificate of `cert_path`. Anchors are looked up in `bundle_path`,
    by default the `bundle.pem` next to the certificate. Raises CertificateFileError naming
    the file when it cannot be read."""
    cert_path = Path(cert_path)
    chain = read_chain(cert_path)
    cert, top = chain[0], chain[-1]
    bundle_path = Path(bundle_path) if bundle_path is not None else cert_path.parent / BUNDLE_FILE
    try:
        anchors = read_chain(bundle_path)
    except CertificateFileError:
        anchors = []
    if issued_by(top, top):
        anchor = top
    else:
        anchor = next((a for a in anchors if issued_by(top, a)), None)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        path=cert_path,
        subject=cert.subject.rfc4514_string(),
        identity=identity_from_cert(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        issuer=cert.issuer.rfc4514_string(),
        anchor_fingerprint=fingerprint(anchor) if anchor is not None else None,
        is_ca=is_ca,
    )
