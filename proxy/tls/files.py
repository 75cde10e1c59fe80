"""Where one identity's TLS material lives: a directory with cert.pem (leaf followed by its
issuer), key.pem and bundle.pem (the trusted anchors). A proxy's `tls_dir` is such a directory."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .names import Identity
from .peer import identity_from_cert

if TYPE_CHECKING:
    from cryptography import x509

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
BUNDLE_FILE = "bundle.pem"


class CertificateFileError(ValueError):
    """A certificate file is missing, unreadable or not PEM; the message names the file."""


def read_chain(path: Path) -> list[x509.Certificate]:
    """The certificates in a PEM file, in file order; raises CertificateFileError naming the file."""
    from cryptography import x509  # only when certificates are read: a plain proxy never imports it

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CertificateFileError(f"cannot read certificate file {path}: {err.strerror or err}") from err
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError as err:
        raise CertificateFileError(f"certificate file {path} holds no valid PEM certificate: {err}") from err
    return chain


@dataclass(frozen=True, slots=True)
class LeafFiles:
    cert_path: Path
    key_path: Path
    bundle_path: Path
    not_after: datetime
    not_before: datetime
    identity: Identity | None

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before

    @classmethod
    def from_dir(cls, directory: str | Path) -> "LeafFiles":
        directory = Path(directory)
        leaf = read_chain(directory / CERT_FILE)[0]
        return cls(
            cert_path=directory / CERT_FILE,
            key_path=directory / KEY_FILE,
            bundle_path=directory / BUNDLE_FILE,
            not_after=leaf.not_valid_after_utc,
            not_before=leaf.not_valid_before_utc,
            identity=identity_from_cert(leaf),
        )
