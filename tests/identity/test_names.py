"""SPIFFE identities: building, parsing, and reading them from peer certificates."""
from __future__ import annotations

import pytest

from controller.identity import Identity, IdentityAuthority, InvalidIdentity, identity_from_peercert, identity_from_uri


def test_uri_and_dns_name_round_trip():
    ident = Identity("meshtui.local", "cluster-1", "httpbin", "httpbin")
    assert ident.uri == "spiffe://meshtui.local/cluster/cluster-1/ns/httpbin/sa/httpbin"
    assert ident.dns_name == "httpbin.httpbin.cluster-1.meshtui.local"
    assert identity_from_uri(ident.uri) == ident


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("https://meshtui.local/cluster/a/ns/b/sa/c", "scheme must be 'spiffe'"),
        ("spiffe://meshtui.local/cluster/a/ns/b", "path must be /cluster/<cluster>/ns/<namespace>/sa/<serviceaccount>"),
        ("spiffe://meshtui.local/cluster/a/namespace/b/sa/c", "path must be"),
        ("spiffe://meshtui.local/cluster/A/ns/b/sa/c", "cluster 'A' is not a DNS label"),
        ("spiffe://meshtui.local/cluster/a/ns//sa/c", "namespace '' is not a DNS label"),
        ("spiffe://meshtui.local:8443/cluster/a/ns/b/sa/c", "must not carry a port"),
        ("spiffe://meshtui.local/cluster/a/ns/b/sa/c?x=1", "must not carry a port, user, query or fragment"),
        ("spiffe://Bad_Domain/cluster/a/ns/b/sa/c", "trust domain 'Bad_Domain' is not a DNS subdomain"),
    ],
)
def test_bad_uris_are_refused_naming_the_part(uri, says):
    with pytest.raises(InvalidIdentity) as err:
        identity_from_uri(uri)
    assert says in str(err.value)
    assert uri in str(err.value)


def test_identity_from_getpeercert_dict():
    peer = {
        "subject": ((("commonName", "web.shop.a.meshtui.local"),),),
        "subjectAltName": (("URI", "spiffe://meshtui.local/cluster/a/ns/shop/sa/web"), ("DNS", "web.shop.a.meshtui.local")),
    }
    assert identity_from_peercert(peer) == Identity("meshtui.local", "a", "shop", "web")
    assert identity_from_peercert(peer, trust_domain="other.local") is None


@pytest.mark.parametrize(
    "san",
    [
        (),
        (("DNS", "web.shop.a.meshtui.local"),),
        (("URI", "https://example.com/"),),
        (("URI", "spiffe://meshtui.local/cluster/a/ns/shop/sa/web"), ("URI", "spiffe://meshtui.local/cluster/b/ns/shop/sa/web")),
    ],
)
def test_peercert_without_exactly_one_valid_spiffe_uri_has_no_identity(san):
    assert identity_from_peercert({"subjectAltName": san}) is None


def test_unverified_peer_dict_is_empty_and_has_no_identity():
    # getpeercert() returns {} when the context did not verify the peer.
    assert identity_from_peercert({}) is None
    assert identity_from_peercert(None) is None


def test_peercert_der(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    leaf = IdentityAuthority(tmp_path).leaf("a", "shop", "web")
    der = x509.load_pem_x509_certificate(leaf.cert_path.read_bytes()).public_bytes(Encoding.DER)
    assert identity_from_peercert(der) == Identity("meshtui.local", "a", "shop", "web")
    assert identity_from_peercert(b"garbage") is None


def test_peercert_of_unsupported_type_is_a_type_error():
    with pytest.raises(TypeError, match="expected an SSL object, a getpeercert\\(\\) dict or DER bytes, got int"):
        identity_from_peercert(42)
