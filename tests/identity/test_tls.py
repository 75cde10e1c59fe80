"""mTLS between leaves with real handshakes on 127.0.0.1."""
from __future__ import annotations

import asyncio
import shutil
import ssl
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from controller.identity import Identity, IdentityAuthority, LeafFiles, ReloadingTLS, client_context, server_context
from tests.identity.tls_harness import call

GATEWAY = ("b", "meshtui-system", "gateway")


def gateway_host(ca: IdentityAuthority) -> str:
    return Identity(ca.trust_domain, *GATEWAY).dns_name


def serial(leaf: LeafFiles) -> int:
    return x509.load_pem_x509_certificate(leaf.cert_path.read_bytes()).serial_number


def snapshot(leaf: LeafFiles, where: Path) -> LeafFiles:
    """A copy of a leaf's files, as a peer that has not reloaded yet still holds them."""
    where.mkdir()
    for f in (leaf.cert_path, leaf.key_path, leaf.bundle_path):
        shutil.copyfile(f, where / f.name)
    return LeafFiles.from_dir(where)


async def test_two_leaves_of_one_anchor_handshake_and_server_reads_caller_identity(tmp_path, servers):
    ca = IdentityAuthority(tmp_path)
    server = await servers(server_context(ca.leaf(*GATEWAY)))
    out = await call(server.port, client_context(ca.leaf("a", "shop", "web"), alpn=("h2", "http/1.1")), gateway_host(ca))
    assert out.accepted, out.error
    assert out.reply == b"ok spiffe://meshtui.local/cluster/a/ns/shop/sa/web hello\n"
    assert server.callers == [Identity("meshtui.local", "a", "shop", "web")]


async def test_server_offers_h2_and_http11(tmp_path):
    ca = IdentityAuthority(tmp_path)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_context(ca.leaf(*GATEWAY)))
    try:
        port = server.sockets[0].getsockname()[1]
        chosen = []
        for alpn in (("h2",), ("http/1.1",)):
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context(ca.leaf("a", "shop", "web"), alpn=alpn), server_hostname=gateway_host(ca))
            chosen.append(writer.get_extra_info("ssl_object").selected_alpn_protocol())
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert chosen == ["h2", "http/1.1"]


async def test_client_without_certificate_is_refused(tmp_path, servers):
    ca = IdentityAuthority(tmp_path)
    server = await servers(server_context(ca.leaf(*GATEWAY)))
    bare = ssl.create_default_context(cafile=str(ca.bundle_path))
    out = await call(server.port, bare, gateway_host(ca))
    assert not out.accepted
    assert server.callers == []
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in server.refusals[0]


async def test_client_from_another_anchor_is_refused(tmp_path, servers):
    ca = IdentityAuthority(tmp_path / "ours")
    other = IdentityAuthority(tmp_path / "theirs")
    server = await servers(server_context(ca.leaf(*GATEWAY)))
    # The stranger trusts our anchor (so it would accept our server) but its own leaf is from its anchor.
    stranger = client_context(other.leaf("a", "shop", "web"))
    stranger.load_verify_locations(cafile=str(ca.bundle_path))
    out = await call(server.port, stranger, gateway_host(ca))
    assert not out.accepted
    assert server.callers == []
    assert "unable to get local issuer certificate" in server.refusals[0]


async def test_server_from_another_anchor_is_refused_by_the_client(tmp_path, servers):
    ca = IdentityAuthority(tmp_path / "ours")
    other = IdentityAuthority(tmp_path / "theirs")
    server = await servers(server_context(other.leaf(*GATEWAY)))
    out = await call(server.port, client_context(ca.leaf("a", "shop", "web")), gateway_host(ca))
    assert not out.accepted
    assert "certificate verify failed" in out.error


async def test_client_with_expired_certificate_is_refused(tmp_path, servers):
    ca = IdentityAuthority(tmp_path)
    server = await servers(server_context(ca.leaf(*GATEWAY)))
    past = IdentityAuthority(tmp_path, clock=lambda: ca.clock() - timedelta(days=2))
    expired = past.leaf("a", "shop", "web", ttl=timedelta(hours=1))
    assert expired.not_after < ca.clock()
    out = await call(server.port, client_context(expired), gateway_host(ca))
    assert not out.accepted
    assert server.callers == []
    assert "certificate has expired" in server.refusals[0]


async def test_client_checks_the_server_dns_name(tmp_path, servers):
    ca = IdentityAuthority(tmp_path)
    server = await servers(server_context(ca.leaf(*GATEWAY)))
    out = await call(server.port, client_context(ca.leaf("a", "shop", "web")), Identity(ca.trust_domain, "c", "meshtui-system", "gateway").dns_name)
    assert not out.accepted
    assert "Hostname mismatch" in out.error


async def test_anchor_rotation_overlap_accepts_old_and_new_leaves_then_drops_the_old(tmp_path, servers):
    ca = IdentityAuthority(tmp_path)
    tls = ReloadingTLS(ca.leaf(*GATEWAY))
    server = await servers(tls.listener_context)
    old_peer = snapshot(ca.leaf("a", "shop", "web"), tmp_path / "old-peer")

    ca.begin_rotation()
    assert tls.reload()  # the gateway trusts old + new before anyone has a new leaf
    ca.reissue_all()
    assert tls.reload()  # and now presents a leaf from the new anchor
    new_peer = ca.leaf("a", "shop", "web")
    assert new_peer.cert_path.read_bytes() != old_peer.cert_path.read_bytes()

    old_ctx = client_context(old_peer)
    old_ctx.load_verify_locations(cafile=str(ca.bundle_path))  # the old peer has reloaded the overlap bundle only
    old = await call(server.port, old_ctx, gateway_host(ca))
    new = await call(server.port, client_context(new_peer), gateway_host(ca))
    assert old.accepted, old.error
    assert new.accepted, new.error

    ca.finish_rotation()
    assert tls.reload()  # same listener, no restart
    refused = await call(server.port, old_ctx, gateway_host(ca))
    still = await call(server.port, client_context(new_peer), gateway_host(ca))
    assert not refused.accepted
    assert "unable to get local issuer certificate" in server.refusals[-1]
    assert still.accepted, still.error


async def test_reload_serves_the_renewed_leaf_while_pooled_connections_keep_working(tmp_path, servers):
    real_now = IdentityAuthority(tmp_path).clock()
    now = [real_now - timedelta(minutes=41)]  # the gateway leaf was issued 41 minutes ago
    ca = IdentityAuthority(tmp_path, clock=lambda: now[0])
    tls = ReloadingTLS(ca.leaf(*GATEWAY, ttl=timedelta(hours=1)))
    server = await servers(tls.listener_context)
    client = ReloadingTLS(ca.leaf("a", "shop", "web"))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client.client, server_hostname=gateway_host(ca))
    try:
        first_serial = writer.get_extra_info("ssl_object").getpeercert()["serialNumber"]
        assert not tls.reload()  # nothing changed on disk

        now[0] = real_now  # past two thirds of the gateway leaf's hour
        renewed = ca.renew_due()
        assert [leaf.identity.service_account for leaf in renewed] == ["gateway"]
        assert tls.reload()

        writer.write(b"pooled\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.readline(), 5)).endswith(b" pooled\n")
    finally:
        writer.close()
    fresh = await call(server.port, client.client, gateway_host(ca))
    assert fresh.accepted, fresh.error
    assert fresh.server_serial != int(first_serial, 16)
    assert fresh.server_serial == serial(ca.leaf(*GATEWAY))


async def test_listener_switches_context_for_clients_without_sni(tmp_path, servers):
    ca = IdentityAuthority(tmp_path)
    tls = ReloadingTLS(ca.leaf(*GATEWAY))
    server = await servers(tls.listener_context)
    ca.rotate_anchor()
    assert tls.reload()
    ctx = client_context(ca.leaf("a", "shop", "web"))
    ctx.check_hostname = False  # an IP-only client sends no SNI
    out = await call(server.port, ctx, None)
    assert out.accepted, out.error
    assert out.server_serial == serial(ca.leaf(*GATEWAY))


def test_broken_files_raise_a_clear_error_and_keep_the_previous_contexts(tmp_path):
    ca = IdentityAuthority(tmp_path)
    leaf = ca.leaf(*GATEWAY)
    tls = ReloadingTLS(leaf)
    before = tls.server
    leaf.key_path.write_bytes(b"not a key")
    with pytest.raises(ssl.SSLError, match="key.pem"):
        tls.reload()
    assert tls.server is before
