"""What the anchor, issuer and leaf certificates carry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from controller.identity import Identity, IdentityAuthority
from proxy.tls.files import read_chain
from controller.identity.pki import issued_by, make_anchor, make_issuer, make_leaf


def ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls).value


def test_chain_anchor_issuer_leaf(tmp_path):
    ca = IdentityAuthority(tmp_path)
    leaf_files = ca.leaf("a", "shop", "web", ttl=timedelta(hours=2))
    leaf, issuer = read_chain(leaf_files.cert_path)  # the leaf file carries its issuer
    (anchor,) = read_chain(ca.bundle_path)

    assert issued_by(leaf, issuer) and issued_by(issuer, anchor) and issued_by(anchor, anchor)
    for cert in (anchor, issuer, leaf):
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.public_key().curve.name == "secp256r1"

    assert ext(anchor, x509.BasicConstraints) == x509.BasicConstraints(ca=True, path_length=1)
    assert ext(issuer, x509.BasicConstraints) == x509.BasicConstraints(ca=True, path_length=0)
    assert ext(leaf, x509.BasicConstraints).ca is False
    assert ext(anchor, x509.KeyUsage).key_cert_sign and ext(issuer, x509.KeyUsage).key_cert_sign
    assert not ext(leaf, x509.KeyUsage).key_cert_sign and ext(leaf, x509.KeyUsage).digital_signature
    assert list(ext(leaf, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]

    san = ext(leaf, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://meshtui.local/cluster/a/ns/shop/sa/web"]
    assert san.get_values_for_type(x509.DNSName) == ["web.shop.a.meshtui.local"]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=2)
    assert leaf_files.not_after == leaf.not_valid_after_utc
    assert issuer.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "a"


def test_each_cluster_gets_its_own_issuer(tmp_path):
    ca = IdentityAuthority(tmp_path)
    a = read_chain(ca.leaf("a", "shop", "web").cert_path)[1]
    b = read_chain(ca.leaf("b", "shop", "web").cert_path)[1]
    assert a.public_key() != b.public_key()
    assert a.subject != b.subject


def test_validity_never_outlives_the_signer():
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    anchor = make_anchor("meshtui.local", start, start + timedelta(days=10))
    issuer = make_issuer(anchor, "meshtui.local", "a", start, start + timedelta(days=365))
    leaf = make_leaf(issuer, Identity("meshtui.local", "a", "shop", "web"), start + timedelta(days=9, hours=12), timedelta(hours=24))
    assert issuer.cert.not_valid_after_utc == start + timedelta(days=10)
    assert leaf.cert.not_valid_after_utc == start + timedelta(days=10)


def test_distinct_anchors_have_distinct_subjects():
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    one = make_anchor("meshtui.local", start, start + timedelta(days=1))
    two = make_anchor("meshtui.local", start, start + timedelta(days=1))
    assert one.cert.subject != two.cert.subject


def test_empty_validity_is_refused():
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="certificate validity is empty"):
        make_anchor("meshtui.local", start, start)


def test_custom_trust_domain_is_kept_across_restarts(tmp_path):
    ca = IdentityAuthority(tmp_path, trust_domain="corp.example")
    assert ca.leaf("a", "shop", "web").identity == Identity("corp.example", "a", "shop", "web")
    assert IdentityAuthority(tmp_path).trust_domain == "corp.example"
