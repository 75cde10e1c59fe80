"""The authority's state on disk: layout, modes, atomic rewrites, renewal, rotation."""
from __future__ import annotations

import os
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from controller.errors import Conflict, StoreCorrupt, StoreWriteFailed
from controller.identity import (
    CertificateFileError, Identity, IdentityAuthority, InvalidIdentity, LeafFiles, describe, needs_renewal,
)
from proxy.tls.files import read_chain


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_and_modes(tmp_path):
    ca = IdentityAuthority(tmp_path)
    leaf = ca.leaf("a", "shop", "web")
    root = tmp_path / "identity"
    assert leaf.cert_path == root / "leaves/a/shop/web/cert.pem"
    assert leaf.key_path == root / "leaves/a/shop/web/key.pem"
    assert leaf.bundle_path.read_bytes() == (root / "bundle.pem").read_bytes()
    for key in (leaf.key_path, root / "issuers/a/key.pem", root / "anchor/key.pem"):
        assert mode(key) == 0o600, key
    assert mode(root) == 0o700
    assert mode(leaf.cert_path) == 0o644
    assert not list(root.rglob("*.tmp"))


def test_restart_keeps_the_anchor_issuer_and_fresh_leaves(tmp_path):
    ca = IdentityAuthority(tmp_path)
    leaf = ca.leaf("a", "shop", "web")
    cert = leaf.cert_path.read_bytes()
    again = IdentityAuthority(tmp_path)
    assert again.anchor_fingerprint == ca.anchor_fingerprint
    assert again.leaf("a", "shop", "web", ttl=60) == leaf  # still fresh: ttl applies to new leaves only
    assert leaf.cert_path.read_bytes() == cert


def test_keys_are_rewritten_atomically_with_mode_0600(tmp_path):
    now = [IdentityAuthority(tmp_path).clock().replace(microsecond=0)]
    ca = IdentityAuthority(tmp_path, clock=lambda: now[0])
    leaf = ca.leaf("a", "shop", "web", ttl=timedelta(hours=3))
    os.chmod(leaf.key_path, 0o644)
    inode = leaf.key_path.stat().st_ino
    old_umask = os.umask(0)
    try:
        now[0] += timedelta(hours=2)
        (renewed,) = ca.renew_due()
    finally:
        os.umask(old_umask)
    assert renewed.key_path == leaf.key_path
    assert leaf.key_path.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert mode(leaf.key_path) == 0o600
    assert not list(leaf.key_path.parent.glob(".*"))
    assert renewed.not_after == now[0] + timedelta(hours=3)


def test_readers_never_see_a_partial_file_during_renewals(tmp_path):
    now = [IdentityAuthority(tmp_path).clock()]
    ca = IdentityAuthority(tmp_path, clock=lambda: now[0])
    leaf = ca.leaf("a", "shop", "web", ttl=60)
    stop = threading.Event()
    bad: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            try:
                serialization.load_pem_private_key(leaf.key_path.read_bytes(), password=None)
                read_chain(leaf.cert_path)
                reads[0] += 1
            except Exception as err:  # any failure to parse is what this test looks for
                bad.append(repr(err))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(40):
            now[0] += timedelta(seconds=60)
            assert len(ca.renew_due()) == 1
    finally:
        stop.set()
        thread.join()
    assert bad == []
    assert reads[0] > 0


def test_a_failed_write_names_the_file_and_leaves_no_temp_file(tmp_path):
    ca = IdentityAuthority(tmp_path)
    blocker = tmp_path / "identity/leaves/a/shop/web/cert.pem"
    blocker.mkdir(parents=True)
    (blocker / "x").write_text("in the way")
    with pytest.raises(StoreWriteFailed, match=r"cannot write .*leaves/a/shop/web/cert\.pem"):
        ca.leaf("a", "shop", "web")
    assert not list(blocker.parent.glob("*.tmp"))


def test_a_mismatched_key_and_cert_pair_is_reissued(tmp_path):
    ca = IdentityAuthority(tmp_path)
    web = ca.leaf("a", "shop", "web")
    api = ca.leaf("a", "shop", "api")
    web.key_path.write_bytes(api.key_path.read_bytes())  # as after a crash between the two renames
    again = ca.leaf("a", "shop", "web")
    key = serialization.load_pem_private_key(again.key_path.read_bytes(), password=None)
    assert read_chain(again.cert_path)[0].public_key() == key.public_key()


def test_bad_names_and_ttls_are_refused(tmp_path):
    ca = IdentityAuthority(tmp_path)
    with pytest.raises(InvalidIdentity, match="namespace 'Shop' is not a DNS label"):
        ca.leaf("a", "Shop", "web")
    with pytest.raises(InvalidIdentity, match="cluster 'a/b' is not a DNS label"):
        ca.issuer("a/b")
    with pytest.raises(ValueError, match="ttl must be positive"):
        ca.leaf("a", "shop", "web", ttl=0)


def test_another_trust_domain_on_existing_state_is_a_conflict(tmp_path):
    IdentityAuthority(tmp_path)
    with pytest.raises(Conflict, match="holds the trust domain 'meshtui.local', not 'corp.example'"):
        IdentityAuthority(tmp_path, trust_domain="corp.example")


def test_a_corrupt_anchor_is_reported_not_replaced(tmp_path):
    ca = IdentityAuthority(tmp_path)
    (tmp_path / "identity/anchor/key.pem").write_text("garbage")
    with pytest.raises(StoreCorrupt, match="trust anchor unusable: cannot load private key .*anchor/key.pem"):
        IdentityAuthority(tmp_path)
    os.unlink(tmp_path / "identity/anchors" / os.readlink(tmp_path / "identity/anchor").split("/")[1] / "key.pem")
    with pytest.raises(StoreCorrupt):
        IdentityAuthority(tmp_path)
    assert ca.anchor_fingerprint  # nothing silently created a new anchor
    assert len(list((tmp_path / "identity/anchors").iterdir())) == 1


# -- renewal by time --------------------------------------------------------------------


def test_needs_renewal_once_a_third_of_the_lifetime_remains(tmp_path):
    ca = IdentityAuthority(tmp_path)
    leaf = ca.leaf("a", "shop", "web", ttl=timedelta(hours=24))
    start = leaf.not_before
    assert not needs_renewal(leaf, start + timedelta(hours=15, minutes=59))
    assert needs_renewal(leaf, start + timedelta(hours=16))
    assert needs_renewal(leaf, leaf.not_after + timedelta(seconds=1))


def test_renew_due_renews_only_due_leaves_and_keeps_their_lifetime(tmp_path):
    now = [IdentityAuthority(tmp_path).clock().replace(microsecond=0)]
    ca = IdentityAuthority(tmp_path, clock=lambda: now[0])
    short = ca.leaf("a", "shop", "web", ttl=30)
    long = ca.leaf("a", "shop", "api", ttl=timedelta(hours=24))
    start = now[0]
    assert ca.renew_due(start + timedelta(seconds=19)) == []
    (renewed,) = ca.renew_due(start + timedelta(seconds=21))
    assert renewed.identity == short.identity
    assert renewed.not_before == start + timedelta(seconds=21)
    assert renewed.lifetime == timedelta(seconds=30)
    assert ca.leaf("a", "shop", "api") == long
    assert {l.identity.service_account for l in ca.renew_due(start + timedelta(hours=17))} == {"web", "api"}


def test_renew_due_reissues_an_expired_leaf(tmp_path):
    ca = IdentityAuthority(tmp_path)
    past = IdentityAuthority(tmp_path, clock=lambda: ca.clock() - timedelta(days=1))
    expired = past.leaf("a", "shop", "web", ttl=timedelta(hours=1))
    (renewed,) = ca.renew_due()
    assert renewed.not_after > ca.clock() > expired.not_after


# -- trust-anchor rotation ----------------------------------------------------------------


def test_rotation_overlap_bundle_then_finish(tmp_path):
    ca = IdentityAuthority(tmp_path)
    leaf = ca.leaf("a", "shop", "web")
    ca.leaf("b", "meshtui-system", "gateway")
    old_anchor = ca.anchor_fingerprint
    old_issuer = read_chain(tmp_path / "identity/issuers/a/cert.pem")[0]

    reissued = ca.rotate_anchor()
    assert ca.rotating
    assert {l.identity.cluster for l in reissued} == {"a", "b"}
    assert len(read_chain(ca.bundle_path)) == 2
    assert describe(leaf.cert_path).anchor_fingerprint == ca.anchor_fingerprint != old_anchor
    assert read_chain(tmp_path / "identity/issuers/a/cert.pem")[0].public_key() != old_issuer.public_key()

    restarted = IdentityAuthority(tmp_path)  # a restart in the middle of the overlap keeps it
    assert restarted.rotating and len(restarted.trusted_anchors()) == 2

    restarted.finish_rotation()
    assert not restarted.rotating
    assert [describe(ca.bundle_path).anchor_fingerprint] == [ca.anchor_fingerprint]
    assert len(read_chain(ca.bundle_path)) == 1
    assert len(list((tmp_path / "identity/anchors").iterdir())) == 1  # the old anchor key is gone


def test_rotation_steps_are_refused_out_of_order(tmp_path):
    ca = IdentityAuthority(tmp_path)
    ca.leaf("a", "shop", "web")
    with pytest.raises(Conflict, match="no trust-anchor rotation is in progress"):
        ca.finish_rotation()
    ca.begin_rotation()
    with pytest.raises(Conflict, match="already in progress"):
        ca.begin_rotation()
    with pytest.raises(Conflict, match=r"still on the old anchor: leaves/a/shop/web, issuers/a; run reissue_all first"):
        ca.finish_rotation()
    assert len(read_chain(ca.bundle_path)) == 2  # the refused finish changed nothing
    ca.reissue_all()
    ca.finish_rotation()


# -- describe -----------------------------------------------------------------------------


def test_describe_leaf_issuer_and_anchor(tmp_path):
    ca = IdentityAuthority(tmp_path)
    leaf = ca.leaf("a", "shop", "web", ttl=timedelta(hours=1))
    info = describe(leaf.cert_path)
    assert info.identity == Identity("meshtui.local", "a", "shop", "web")
    assert info.subject == "CN=web.shop.a.meshtui.local,O=meshtui"
    assert info.issuer == "CN=meshtui issuer a.meshtui.local,OU=a,O=meshtui"
    assert (info.not_before, info.not_after) == (leaf.not_before, leaf.not_after)
    assert info.anchor_fingerprint == ca.anchor_fingerprint
    assert not info.is_ca
    assert info.to_dict()["identity"] == "spiffe://meshtui.local/cluster/a/ns/shop/sa/web"
    issuer = describe(tmp_path / "identity/issuers/a/cert.pem")
    assert issuer.is_ca and issuer.identity is None and issuer.anchor_fingerprint == ca.anchor_fingerprint
    assert describe(tmp_path / "identity/anchor/cert.pem").anchor_fingerprint == ca.anchor_fingerprint


def test_describe_a_cert_no_trusted_anchor_signed(tmp_path):
    ours = IdentityAuthority(tmp_path / "ours")
    theirs = IdentityAuthority(tmp_path / "theirs").leaf("a", "shop", "web")
    assert describe(theirs.cert_path, bundle_path=ours.bundle_path).anchor_fingerprint is None


def test_describe_a_file_that_is_not_a_certificate(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(CertificateFileError, match=f"certificate file {junk} holds no valid PEM certificate"):
        describe(junk)
    with pytest.raises(CertificateFileError, match="cannot read certificate file"):
        describe(tmp_path / "missing.pem")


def test_leaf_files_from_a_tls_dir(tmp_path):
    leaf = IdentityAuthority(tmp_path).leaf("a", "shop", "web")
    assert LeafFiles.from_dir(leaf.cert_path.parent) == leaf
