"""proxy/tls/summary.py reads an identity's files with the `ssl` module alone; here its
answers are checked against `cryptography`'s reading of the same files, through a
trust-anchor rotation (two anchors in the bundle), and bad files are named."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from controller.identity import IdentityAuthority
from proxy.tls import CertificateFileError
from proxy.tls.summary import summarize


def expected(directory: Path, anchor: str) -> dict:
    leaf = x509.load_pem_x509_certificates((directory / "cert.pem").read_bytes())[0]
    anchors = x509.load_pem_x509_certificates((directory / "bundle.pem").read_bytes())
    uri = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)[0]
    return {"identity": uri, "serial": format(leaf.serial_number, "x"),
            "not_before": leaf.not_valid_before_utc.isoformat(), "not_after": leaf.not_valid_after_utc.isoformat(),
            "anchor": anchor, "trust_anchors": [a.fingerprint(hashes.SHA256()).hex() for a in anchors]}


def test_the_summary_matches_what_cryptography_reads_through_a_rotation(tmp_path: Path) -> None:
    ca = IdentityAuthority(tmp_path)
    ca.leaf("c1", "shop", "cart")
    directory = tmp_path / "identity" / "leaves" / "c1" / "shop" / "cart"
    first = ca.anchor_fingerprint
    assert summarize(directory / "cert.pem", directory / "bundle.pem") == expected(directory, first)

    ca.begin_rotation()  # the bundle holds both anchors; the leaf still leads to the first
    described = summarize(directory / "cert.pem", directory / "bundle.pem")
    assert len(described["trust_anchors"]) == 2
    assert described == expected(directory, first)

    ca.reissue_all()  # signed under the new anchor
    assert summarize(directory / "cert.pem", directory / "bundle.pem") == expected(directory, ca.anchor_fingerprint)
    ca.finish_rotation()
    described = summarize(directory / "cert.pem", directory / "bundle.pem")
    assert described["anchor"] == ca.anchor_fingerprint != first
    assert described == expected(directory, ca.anchor_fingerprint)


@pytest.mark.parametrize("content, why", [
    (b"", "holds no PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "invalid"),
])
def test_a_bad_certificate_file_is_named(tmp_path: Path, content: bytes, why: str) -> None:
    ca = IdentityAuthority(tmp_path)
    ca.leaf("c1", "shop", "cart")
    directory = tmp_path / "identity" / "leaves" / "c1" / "shop" / "cart"
    broken = tmp_path / "broken.pem"
    broken.write_bytes(content)
    with pytest.raises(CertificateFileError, match=f"{broken}.*{why}"):
        summarize(broken, directory / "bundle.pem")
    with pytest.raises(CertificateFileError, match=f"{tmp_path / 'missing.pem'}"):
        summarize(directory / "cert.pem", tmp_path / "missing.pem")
