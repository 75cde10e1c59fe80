"""The gateway: export paths, prefix stripping, audience and service-account
checks, caller identity from the client certificate (mTLS) or, in plain mode,
from the x-meshtui-src-cluster header."""
from __future__ import annotations

import ssl

import aiohttp
import pytest

from proxy.config import GatewayRule
from proxy.gateway import Caller, parse_spiffe, refusal
from tests.proxy.http_support import (
    client_context, config, data_plane, endpoint, gateway_rule, make_ca, make_leaf, route, server_context,
    text_handler, upstreams, url,
)


def rule(**kw) -> GatewayRule:
    return GatewayRule(path="/c1/httpbin-mesh", path_type="Prefix", namespace="httpbin", service="httpbin",
                       port=8080, endpoints=(), **kw)


def test_parse_spiffe():
    assert parse_spiffe("spiffe://fed.local/cluster/c2/ns/curl/sa/curl") == Caller("c2", "curl", "curl")
    for bad in ("spiffe://fed.local/ns/curl/sa/curl", "https://x/cluster/c/ns/n/sa/s",
                "spiffe://fed.local/cluster//ns/n/sa/s", "spiffe://fed.local/cluster/c/ns/n/sa/s/extra"):
        assert parse_spiffe(bad) is None


def test_refusal_reasons():
    assert refusal(rule(), "cluster-2", None) is None
    assert refusal(rule(allowed_clusters=("cluster-1", "cluster-3")), "cluster-3", "default") is None
    assert refusal(rule(allowed_clusters=("cluster-1",)), "cluster-2", "default") == (
        "cluster cluster-2 is not in the audience of httpbin.httpbin (allowed: cluster-1)")
    assert refusal(rule(allowed_clusters=("cluster-1",)), "", None).startswith(
        "a caller of unknown cluster is not in the audience")
    assert refusal(rule(service_account="curl"), "cluster-2", "curl") is None
    assert refusal(rule(service_account="curl"), "cluster-2", "bot") == (
        "service account bot of cluster cluster-2 may not call httpbin.httpbin (allowed: curl)")
    assert "unknown without mTLS" in refusal(rule(service_account="curl"), "cluster-2", None)


def gw_config(port: int, **extra) -> dict:
    return config("c1", gateway=[
        gateway_rule("/c1/httpbin-mesh", "httpbin", "httpbin", 8080, [endpoint(port, "c1")], **extra),
        {**gateway_rule("/c1/exact", "httpbin", "httpbin", 8080, [endpoint(port, "c1")]), "path_type": "Exact"},
    ])


async def call(plane, path: str, headers: dict | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url(plane, "gateway", path), headers=headers or {}) as r:
        return r.status, await r.text()


async def test_prefix_is_stripped_element_wise():
    async with upstreams(text_handler("ok")) as (up,):
        async with data_plane("c1", gw_config(up.port), outbound=False, gateway=True) as gw:
            assert await call(gw, "/c1/httpbin-mesh/get?a=b") == (200, "ok\n")
            assert await call(gw, "/c1/httpbin-mesh") == (200, "ok\n")
            assert await call(gw, "/c1/exact") == (200, "ok\n")
            status, text = await call(gw, "/c1/httpbin-meshy")
            assert (status, text) == (404, "no export at path /c1/httpbin-meshy in cluster c1\n")
            assert (await call(gw, "/c1/exact/more"))[0] == 404
    assert up.targets == [b"/get?a=b", b"/", b"/"]


async def test_caller_outside_the_audience_gets_403():
    async with upstreams(text_handler("ok")) as (up,):
        cfg = gw_config(up.port, allowed_clusters=["cluster-1", "cluster-3"])
        async with data_plane("c1", cfg, outbound=False, gateway=True) as gw:
            status, text = await call(gw, "/c1/httpbin-mesh/", {"x-meshtui-src-cluster": "cluster-2"})
            assert status == 403
            assert text == "cluster cluster-2 is not in the audience of httpbin.httpbin (allowed: cluster-1, cluster-3)\n"
            assert await call(gw, "/c1/httpbin-mesh/", {"x-meshtui-src-cluster": "cluster-3"}) == (200, "ok\n")
    assert len(up.targets) == 1


async def test_plain_mode_service_account_comes_from_the_outbound_proxy():
    async with upstreams(text_handler("ok")) as (up,):
        gw_cfg = gw_config(up.port, service_account="curl")
        async with data_plane("c1", gw_cfg, outbound=False, gateway=True) as c1:
            status, text = await call(c1, "/c1/httpbin-mesh/", {"x-meshtui-src-cluster": "cluster-2"})
            assert status == 403 and "only accepts service account curl" in text
            gw_port = c1.servers["gateway"].address[1]
            out_cfg = config("c2", [route("httpbin", "httpbin", 8080, [[("c1", [
                endpoint(gw_port, "c1", gateway=True, prefix="/c1/httpbin-mesh")])]])])
            async with data_plane("c2", out_cfg) as c2, aiohttp.ClientSession() as s:
                async def as_account(sa: str | None) -> tuple[int, str]:
                    headers = {"Host": "httpbin.httpbin:8080", **({"x-meshtui-service-account": sa} if sa else {})}
                    async with s.get(url(c2, "outbound", "/"), headers=headers) as r:
                        return r.status, await r.text()

                assert await as_account("curl") == (200, "ok\n")
                status, text = await as_account("bot")
                assert (status, text) == (403, "service account bot of cluster c2 may not call httpbin.httpbin "
                                               "(allowed: curl)\n")
                assert (await as_account(None))[0] == 403
    assert len(up.targets) == 1
    names = {n.lower() for n, _ in up.headers[0]}
    assert not names & {b"x-meshtui-service-account", b"x-meshtui-src-sa", b"x-meshtui-src-cluster"}


async def test_a_new_config_reaches_each_caller():
    async with upstreams(text_handler("old"), text_handler("new")) as (old, new):
        async with data_plane("c1", gw_config(old.port), outbound=False, gateway=True) as gw:
            for caller in ("c2", "c3"):
                assert await call(gw, "/c1/httpbin-mesh/", {"x-meshtui-src-cluster": caller}) == (200, "old\n")
            gw.live.apply(gw_config(new.port, allowed_clusters=["c2"]), persist=False)
            assert await call(gw, "/c1/httpbin-mesh/", {"x-meshtui-src-cluster": "c2"}) == (200, "new\n")
            assert (await call(gw, "/c1/httpbin-mesh/", {"x-meshtui-src-cluster": "c3"}))[0] == 403


async def test_no_local_endpoint_is_503_with_the_reason():
    async with data_plane("c1", config("c1", gateway=[gateway_rule("/c1/x", "ns", "svc", 80, [])]),
                          outbound=False, gateway=True) as gw:
        status, text = await call(gw, "/c1/x/")
        assert status == 503 and "svc.ns:80" in text


@pytest.fixture
def pki(tmp_path):
    ca = make_ca(tmp_path)
    return {
        "ca": ca[2],
        "gateway": make_leaf(tmp_path, ca, "gateway", uri="spiffe://fed/cluster/c1/ns/mesh/sa/gateway"),
        "c2": make_leaf(tmp_path, ca, "c2", uri="spiffe://fed/cluster/c2/ns/mesh/sa/proxy"),
        "c3": make_leaf(tmp_path, ca, "c3", uri="spiffe://fed/cluster/c3/ns/mesh/sa/proxy"),
        "anonymous": make_leaf(tmp_path, ca, "anonymous"),
    }


async def test_mtls_caller_identity_comes_from_the_certificate(pki):
    async with upstreams(text_handler("ok")) as (up,):
        cfg = gw_config(up.port, allowed_clusters=["c3"])
        gw_ssl = server_context(pki["gateway"], require_client=True)
        async with data_plane("c1", cfg, outbound=False, gateway=True, gateway_ssl=gw_ssl) as gw:
            base = f"https://{gw.addresses()['gateway']}/c1/httpbin-mesh/"

            async def call_as(name: str, headers: dict | None = None) -> tuple[int, str]:
                ctx = client_context(pki[name], pki["ca"])
                async with aiohttp.ClientSession() as s, s.get(base, ssl=ctx, headers=headers or {}) as r:
                    return r.status, await r.text()

            assert await call_as("c3") == (200, "ok\n")
            # with TLS the header is not believed
            status, text = await call_as("c2", {"x-meshtui-src-cluster": "c3"})
            assert (status, text) == (403, "cluster c2 is not in the audience of httpbin.httpbin (allowed: c3)\n")
            status, text = await call_as("anonymous")
            assert status == 403 and "no SPIFFE identity" in text
            with pytest.raises((aiohttp.ClientError, ssl.SSLError)):  # no client certificate: no handshake
                async with aiohttp.ClientSession() as s:
                    await s.get(base, ssl=client_context(None, pki["ca"]))
    assert len(up.targets) == 1


async def test_outbound_to_gateway_over_mtls(pki):
    async with upstreams(text_handler("from c1")) as (up,):
        gw_ssl = server_context(pki["gateway"], require_client=True)
        async with data_plane("c1", gw_config(up.port, allowed_clusters=["c2"]), outbound=False, gateway=True,
                              gateway_ssl=gw_ssl) as c1:
            gw_port = c1.servers["gateway"].address[1]
            out_cfg = config("c2", [route("httpbin", "httpbin", 8080, [[("c1", [
                endpoint(gw_port, "c1", gateway=True, prefix="/c1/httpbin-mesh")])]])])
            ctx = client_context(pki["c2"], pki["ca"])
            async with data_plane("c2", out_cfg, tls_for=lambda ep: (ctx if ep.gateway else None, "localhost")) as c2:
                async with aiohttp.ClientSession() as s:
                    for _ in range(3):
                        async with s.get(url(c2, "outbound", "/hello"), headers={"Host": "httpbin.httpbin:8080"}) as r:
                            assert (r.status, await r.text()) == (200, "from c1\n")
                assert c2.pools.opened == 1  # one mTLS connection, kept alive
    assert up.targets == [b"/hello"] * 3
