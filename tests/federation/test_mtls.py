"""mTLS on every cross-cluster hop of the embedded federation (real proxies, real TLS on
loopback): pooled connections, gateways that refuse callers without a valid certificate of the
federation, and export audiences enforced twice (no ServiceImport, then 403 at the gateway)."""
from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization

from controller.demo.client import run_load, send
from controller.identity import Identity, IdentityAuthority, LeafFiles, read_report
from controller.identity.pki import KeyPair, make_leaf
from proxy.tls import read_chain
from tests.federation.mesh_support import (
    HI, URL, api_recorded, client_ctx, gateway_get, gateway_handshake, leaf_of, meshtui,
)
from tests.running import address, eventually
from tests.support import fixture_text

pytestmark = pytest.mark.timeout(60)


def metrics_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


async def test_cross_cluster_requests_ride_one_mtls_connection_per_gateway(fed, http):
    controller, runtime = fed
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")

    async def served() -> bool:
        return (await send(http, address(controller, "cluster-2", "outbound"), URL)).status == 200

    assert await eventually(served)
    report = await run_load(http, address(controller, "cluster-2", "outbound"), URL, rps=300, duration_s=1.0,
                            concurrency=4)
    assert dict(report.statuses) == {200: 300}, (report.statuses, report.errors)
    assert set(report.bodies) == {HI.format("cluster-1"), HI.format("cluster-3")}
    for cluster in ("cluster-1", "cluster-3"):
        async with http.get(f"http://{address(controller, cluster, 'admin')}/tls") as r:
            tls = await r.json()
        # 150 requests reached each gateway as streams of one mux session: one TLS connection
        assert tls["gateway_handshakes"] == 1, tls["gateway_handshakes"]
        async with http.get(f"http://{address(controller, cluster, 'admin')}/metrics") as r:
            lines = metrics_lines(await r.text(), "request_total")
        gateway = [line for line in lines if 'direction="gateway"' in line and 'src_cluster="cluster-2"' in line]
        assert gateway and all('tls="true"' in line for line in gateway), lines


async def test_a_gateway_refuses_callers_without_a_valid_federation_certificate(fed, tmp_path):
    controller, runtime = fed
    state = runtime.state_dir
    bundle = state / "identity" / "bundle.pem"
    path = "/cluster-1/httpbin-mesh/"
    assert await gateway_get(controller, "cluster-1", path, client_ctx(leaf_of(state, "cluster-2"), bundle)) == (
        200, HI.format("cluster-1"))

    # another federation's anchor, same identity name
    foreign = IdentityAuthority(tmp_path / "elsewhere").leaf("cluster-2", "default", "default")
    other_anchor = client_ctx(None, bundle)
    other_anchor.load_cert_chain(foreign.cert_path, foreign.key_path)

    # our own anchor and cluster-2's issuer, but expired an hour ago
    issuer_dir = state / "identity" / "issuers" / "cluster-2"
    issuer = KeyPair(read_chain(issuer_dir / "cert.pem")[0],
                     serialization.load_pem_private_key((issuer_dir / "key.pem").read_bytes(), password=None))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    old = make_leaf(issuer, Identity(controller.core.trust_domain, "cluster-2", "default", "default"),
                    now - timedelta(hours=2), timedelta(hours=1))
    expired_dir = tmp_path / "expired"
    expired_dir.mkdir()
    (expired_dir / "cert.pem").write_bytes(old.cert_pem + issuer.cert_pem)
    (expired_dir / "key.pem").write_bytes(old.key_pem)
    (expired_dir / "bundle.pem").write_bytes(bundle.read_bytes())

    outcomes = {name: await gateway_handshake(controller, "cluster-1", ctx) for name, ctx in (
        ("valid", client_ctx(leaf_of(state, "cluster-2"), bundle)),
        ("no certificate", client_ctx(None, bundle)),
        ("another anchor", other_anchor),
        ("expired", client_ctx(LeafFiles.from_dir(expired_dir), bundle)))}
    assert outcomes.pop("valid") == "answered"
    for name, outcome in outcomes.items():
        assert outcome.startswith("handshake failed"), (name, outcome)


async def test_a_cluster_outside_the_audience_gets_no_import_and_a_403(fed):
    controller, runtime = fed
    state = runtime.state_dir
    only_3 = fixture_text("fsm_export_cluster-1.yaml").replace(
        '  name: httpbin-cluster-1\nspec:\n', '  name: httpbin-cluster-1\nspec:\n  targetClusters: ["default/default/default/cluster-3"]\n')
    await controller.apply(only_3, cluster="cluster-1")
    imports = controller.core.imports
    assert ("cluster-3", "httpbin", "httpbin-cluster-1") in imports
    assert ("cluster-2", "httpbin", "httpbin-cluster-1") not in imports
    assert ("cluster-2", "httpbin", "httpbin") in imports  # the other export still reaches cluster-2

    bundle = state / "identity" / "bundle.pem"
    path = "/cluster-1/httpbin-mesh-cluster-1/"

    async def refused() -> bool:
        return (await gateway_get(controller, "cluster-1", path, client_ctx(leaf_of(state, "cluster-2"), bundle)))[0] == 403

    assert await eventually(refused)
    assert await gateway_get(controller, "cluster-1", path, client_ctx(leaf_of(state, "cluster-2"), bundle)) == (
        403, "cluster cluster-2 is not in the audience of httpbin-cluster-1.httpbin (allowed: cluster-3)")
    assert await gateway_get(controller, "cluster-1", path, client_ctx(leaf_of(state, "cluster-3"), bundle)) == (
        200, HI.format("cluster-1"))


async def test_a_service_account_outside_service_account_name_gets_403(fed, http):
    controller, runtime = fed
    await controller.apply(fixture_text("fsm_export_cluster-1.yaml").replace('serviceAccountName: "*"', "serviceAccountName: curl", 1),
                           cluster="cluster-1")
    await controller.apply(fixture_text("fsm_gtp_failover.yaml").replace("    - clusterKey: default/default/default/cluster-3\n", ""),
                           cluster="cluster-2", namespace="httpbin")
    await controller.apply([{"apiVersion": "meshtui.io/v1alpha1", "kind": "Workload",
                             "metadata": {"name": "curl", "namespace": "curl", "cluster": "cluster-2"},
                             "spec": {"app": "echo", "port": 8080, "serviceAccountName": "curl"}}])
    outbound = address(controller, "cluster-2", "outbound")

    async def curl_served() -> bool:
        return (await send(http, outbound, URL, service_account="curl")).status == 200

    assert await eventually(curl_served)
    leaf = leaf_of(runtime.state_dir, "cluster-2", "curl", "curl")
    assert leaf.identity.uri == f"spiffe://{controller.core.trust_domain}/cluster/cluster-2/ns/curl/sa/curl"
    denied = await send(http, outbound, URL)  # no account: default
    assert (denied.status, denied.body.decode().strip()) == (
        403, "service account default of cluster cluster-2 may not call httpbin.httpbin (allowed: curl)")
    unknown = await send(http, outbound, URL, service_account="bot")
    assert unknown.status == 403 and "no identity for service account 'bot' (known: curl, default)" in unknown.body.decode()

    async with api_recorded(controller):
        as_default = await meshtui(runtime.state_dir, "curl", "--from", "cluster-2", "--as", "default", "-f", URL)
        as_curl = await meshtui(runtime.state_dir, "curl", "--from", "cluster-2", "--as", "curl", URL)
    assert as_default.code == 22 and "returned error: 403" in as_default.err, as_default
    assert (as_curl.code, as_curl.out.strip()) == (0, HI.format("cluster-1")), as_curl


async def test_keys_are_owner_only_and_proxies_run_with_their_cluster_leaves(fed):
    controller, runtime = fed
    root = runtime.state_dir / "identity"
    keys = sorted(root.rglob("key.pem"))
    # the anchor; an issuer, a gateway leaf and a default/default leaf per cluster; httpbin/default
    # for the echo workloads of cluster-1 and cluster-3
    assert len(keys) == 1 + 3 * 3 + 2
    assert {stat.S_IMODE(k.stat().st_mode) for k in keys} == {0o600}
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for cluster, handle in runtime.proxies.items():
        assert f"--tls-dir={root / 'leaves' / cluster}" in handle.proc.spec.argv
    assert {c["status"]["identity"]["trustAnchor"] for c in await controller.list("Cluster")} == {
        read_report(runtime.state_dir).anchor.anchor_fingerprint}
