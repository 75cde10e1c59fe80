"""A proxy's --tls-dir (proxy/tls/identities.py) with real TLS on loopback: identities loaded
per service account, pooled mTLS connections from the outbound proxy to a gateway (one
handshake per client identity, not per request), the caller's account choosing the client
certificate, and POST /tls/reload after a renewal."""
from __future__ import annotations

import subprocess
import sys
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from controller.identity import IdentityAuthority
from controller.reconcile.routes import spiffe_gateway_identity
from proxy.config import Endpoint, ListenSettings
from proxy.main import DataPlane
from proxy.tls import CALLER_TLS, ProxyIdentities, TLSDirError
from tests.proxy.http_support import config, gateway_rule, route, text_handler, upstreams

TOKEN = "secret"


def issue(tmp_path: Path) -> tuple[IdentityAuthority, list]:
    """Leaves issued 17 h ago (valid, and due for renewal now), and the authority's clock."""
    now = [datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=17)]
    ca = IdentityAuthority(tmp_path, clock=lambda: now[0])
    ca.leaf("c1", "meshtui-system", "gateway")
    for namespace, account in (("default", "default"), ("curl", "curl"), ("shop", "curl")):
        ca.leaf("c2", namespace, account)
    return ca, now


def leaves(tmp_path: Path, cluster: str) -> Path:
    return tmp_path / "identity" / "leaves" / cluster


def test_identities_by_service_account_and_the_gateway_name_to_check(tmp_path):
    ca, _ = issue(tmp_path)
    ids = ProxyIdentities(leaves(tmp_path, "c2"), gateway=False, outbound=True)
    assert ids.client_accounts() == ["curl", "default"]
    assert ids.client(b"curl") is ids.client(b"curl/curl") and ids.client(b"shop/curl") is not ids.client(b"curl")
    assert ids.client(b"bot") is None
    gateway_ep = Endpoint("127.0.0.1", 4143, "c1", gateway=True, server_identity=spiffe_gateway_identity(ca.trust_domain, "c1"))
    token = CALLER_TLS.set(ids.client(b"curl"))
    try:
        ctx, name = ids.tls_for(gateway_ep)
    finally:
        CALLER_TLS.reset(token)
    assert ctx is ids.client(b"curl").client and name == "gateway.meshtui-system.c1.meshtui.local"
    assert ids.tls_for(gateway_ep)[0] is ids.client(b"default").client  # no caller set: default
    assert ids.tls_for(Endpoint("127.0.0.1", 8080, "c2")) == (None, "")  # local endpoints: plain
    described = ids.describe()
    assert described["trust_anchors"] == [ca.anchor_fingerprint]
    assert described["identities"]["curl/curl"]["identity"] == "spiffe://meshtui.local/cluster/c2/ns/curl/sa/curl"
    assert described["identities"]["curl/curl"]["anchor"] == ca.anchor_fingerprint


def test_a_dir_without_the_identity_a_listener_needs_is_refused(tmp_path):
    issue(tmp_path)
    with pytest.raises(TLSDirError, match=r"identity meshtui-system/gateway is unusable: no meshtui-system/gateway/cert\.pem"):
        ProxyIdentities(leaves(tmp_path, "c2"), gateway=True, outbound=True)
    with pytest.raises(TLSDirError, match="not a directory"):
        ProxyIdentities(tmp_path / "nowhere", gateway=False, outbound=True)
    (leaves(tmp_path, "c2") / "default" / "default" / "key.pem").write_text("garbage")
    with pytest.raises(TLSDirError, match="identity default/default is unusable: cannot load"):
        ProxyIdentities(leaves(tmp_path, "c2"), gateway=False, outbound=True)


@asynccontextmanager
async def plane(cluster: str, tls_dir: Path, cfg: dict, **listeners: str):
    settings = ListenSettings(cluster=cluster, admin="127.0.0.1:0", admin_token=TOKEN, tls_dir=str(tls_dir), **listeners)
    p = DataPlane(settings)
    p.live.apply(cfg, persist=False)
    await p.start()
    try:
        yield p
    finally:
        await p.stop(grace_s=0.5)


async def test_pooled_mtls_connections_one_per_caller_identity_and_reload_after_renewal(tmp_path):
    ca, now = issue(tmp_path)
    async with upstreams(text_handler("from c1")) as (up,):
        ep = {"host": "127.0.0.1", "port": up.port, "cluster": "c1"}
        gw_cfg = config("c1", gateway=[gateway_rule("/c1/web", "shop", "web", 80, [ep], service_account="curl")])
        async with plane("c1", leaves(tmp_path, "c1"), gw_cfg, gateway="127.0.0.1:0") as c1:
            gw_port = c1.servers["gateway"].address[1]
            remote = {"host": "127.0.0.1", "port": gw_port, "cluster": "c1", "gateway": True, "path_prefix": "/c1/web",
                      "server_identity": spiffe_gateway_identity(ca.trust_domain, "c1")}
            out_cfg = config("c2", [route("web", "shop", 80, [[("c1", [remote])]])])
            async with plane("c2", leaves(tmp_path, "c2"), out_cfg, outbound="127.0.0.1:0") as c2, \
                    aiohttp.ClientSession() as s:
                base = f"http://{c2.addresses()['outbound']}/hello"
                admin = f"http://{c2.addresses()['admin']}"

                async def get(account: str | None) -> tuple[int, str]:
                    headers = {"Host": "web.shop:80", **({"x-meshtui-service-account": account} if account else {})}
                    async with s.get(base, headers=headers) as r:
                        return r.status, (await r.text()).strip()

                assert [await get("curl") for _ in range(30)] == [(200, "from c1")] * 30
                assert c1.identities.gateway_handshakes == 1
                assert await get(None) == (403, "service account default of cluster c2 may not call web.shop "
                                                "(allowed: curl)")
                assert c1.identities.gateway_handshakes == 2  # the default account has its own connection
                status, text = await get("bot")
                assert status == 403 and text.startswith("cluster c2 has no identity for service account 'bot'")

                async with s.post(f"{admin}/tls/reload") as r:
                    assert r.status == 401
                before = c2.identities.describe()["identities"]["curl/curl"]["serial"]
                now[0] = datetime.now(timezone.utc)
                assert len(ca.renew_due()) == 4
                async with s.post(f"{admin}/tls/reload", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    reloaded = await r.json()
                assert sorted(reloaded["changed"]) == ["curl/curl", "default/default", "shop/curl"]
                assert reloaded["identities"]["curl/curl"]["serial"] != before
                assert [await get("curl") for _ in range(5)] == [(200, "from c1")] * 5
                assert c1.identities.gateway_handshakes == 3  # the renewed leaf: one new connection
                async with s.get(f"{admin}/tls") as r:
                    assert (await r.json())["identities"]["curl/curl"]["serial"] == reloaded["identities"]["curl/curl"]["serial"]
    assert not {n.lower() for n, _ in up.headers[0]} & {b"x-meshtui-service-account", b"x-meshtui-src-sa"}


def test_the_proxy_process_refuses_an_unusable_tls_dir_with_the_reason(tmp_path):
    issue(tmp_path)
    done = subprocess.run([sys.executable, "-m", "proxy", "--cluster", "c2", "--gateway", "127.0.0.1:0",
                           f"--tls-dir={leaves(tmp_path, 'c2')}"], capture_output=True, text=True, timeout=30,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == (f"proxy: --tls-dir {leaves(tmp_path, 'c2')}: the identity meshtui-system/gateway "
                                   f"is unusable: no meshtui-system/gateway/cert.pem")
