"""`meshtui check` over a running federation: every check passes when all is well, and each
cause of trouble in the data plane and its identities fails its check with a hint: a link
trusting another anchor, proxies serving leaves older than those on disk, a new anchor the
proxies never loaded, a dead gateway (with `meshtui check -o json` exiting 1)."""
from __future__ import annotations

import json

import pytest

from controller.identity import IdentityAuthority, authority_lock
from controller.links import TRUST_ANCHOR_ANNOTATION, link_manifest
from tests.federation.mesh_support import api_recorded, meshtui
from tests.running import eventually, federation, status

pytestmark = pytest.mark.timeout(90)


async def failed(controller) -> dict:
    return {r.name: r for r in await controller.checks() if not r.ok and not r.warning}


async def test_each_cause_fails_its_check_with_a_hint(tmp_path):
    async with federation(tmp_path) as (controller, runtime):
        state = runtime.state_dir
        link = link_manifest("cluster-2", await controller.get("Cluster", "cluster-3"), runtime.anchor_fingerprint,
                             period_s=0.2, timeout_s=0.2)
        await controller.apply([link])

        async def probed() -> bool:
            return status(controller, "Link", "cluster-2-to-cluster-3").get("alive") is True

        assert await eventually(probed)
        results = await controller.checks()
        assert [r for r in results if not r.ok] == []
        assert {"trust anchor is valid and not near expiry", "every leaf certificate is valid and not near expiry",
                "every cluster is on the same trust anchor", "every proxy serves its latest leaves",
                "every link trusts the federation's trust anchor", "every linked gateway is alive",
                "every import has an endpoint behind a live gateway", "every proxy is running the current routes",
                "exports have endpoints"} <= {r.name for r in results}

        stranger = {**link, "metadata": {"name": "stranger", "annotations": {TRUST_ANCHOR_ANNOTATION: "f" * 64}}}
        await controller.apply([stranger])
        check = (await failed(controller))["every link trusts the federation's trust anchor"]
        assert check.message == "stranger: trusts ffffffffffffffff" and "meshtui link" in check.hint
        await controller.delete("Link", "stranger")

        # renewed on disk behind the runtime's back: the proxies were never told to reload
        with authority_lock(state):
            ca = IdentityAuthority(state)
            later = ca.clock() + ca.leaf_ttl * 0.7
            IdentityAuthority(state, clock=lambda: later).renew_due()
        check = (await failed(controller))["every proxy serves its latest leaves"]
        assert "cluster-1 meshtui-system/gateway: serves a leaf expiring" in check.message and "POST /tls/reload" in check.hint

        with authority_lock(state):
            IdentityAuthority(state).begin_rotation()  # a new anchor no proxy loaded
        check = (await failed(controller))["every cluster is on the same trust anchor"]
        assert check.message.startswith("cluster-1: its proxy does not trust the current anchor") and "rotate-anchor" in check.hint

        await runtime.proxies["cluster-3"].proc.stop()

        async def dead() -> bool:
            return status(controller, "Link", "cluster-2-to-cluster-3").get("alive") is False

        assert await eventually(dead)
        gone = await failed(controller)
        assert gone["every linked gateway is alive"].message.startswith(
            "cluster-2-to-cluster-3: gateway of cluster-3 is dead after 3 failed probes")
        assert "cluster-2/httpbin/httpbin-cluster-3: every exporter's gateway is dead (cluster-3)" in \
            gone["every import has an endpoint behind a live gateway"].message
        assert gone["every embedded cluster's proxy is running"].hint.endswith("/proxies/<cluster>/proxy.log")
        async with api_recorded(controller):
            ran = await meshtui(state, "check", "-o", "json")
    assert ran.code == 1, ran
    report = json.loads(ran.out)
    errors = {c["description"]: c for cat in report["categories"] for c in cat["checks"] if c["result"] == "error"}
    assert not report["success"]
    assert {"every linked gateway is alive", "every cluster is on the same trust anchor",
            "every proxy serves its latest leaves", "every import has an endpoint behind a live gateway"} <= set(errors)
    assert all(c["hint"] for c in errors.values()), errors
