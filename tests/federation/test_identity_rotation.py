"""Certificates change under continuous traffic with no failed request: the runtime renews
short-lived leaves and has the proxies reload them; `meshtui identity rotate-anchor` (the CLI,
in another process, reaching the proxies through the recorded controller) replaces the trust
anchor."""
from __future__ import annotations

import asyncio
import json

import pytest

from controller.demo.client import run_load, send
from tests.federation.mesh_support import HI, URL, api_recorded, meshtui
from tests.running import address, eventually, federation
from tests.support import fixture_text

pytestmark = pytest.mark.timeout(90)
CLUSTERS = ("cluster-1", "cluster-2", "cluster-3")


async def loaded_tls(http, controller) -> dict[str, dict]:
    out = {}
    for cluster in CLUSTERS:
        async with http.get(f"http://{address(controller, cluster, 'admin')}/tls") as r:
            out[cluster] = await r.json()
    return out


def serials(tls: dict[str, dict]) -> dict[tuple[str, str], str]:
    return {(c, name): i["serial"] for c, t in tls.items() for name, i in t["identities"].items()}


async def failover_served(http, controller) -> None:
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")

    async def served() -> bool:
        return (await send(http, address(controller, "cluster-2", "outbound"), URL)).status == 200

    assert await eventually(served)


async def test_leaves_renewed_and_reloaded_under_load_lose_no_request(tmp_path, http):
    async with federation(tmp_path, leaf_ttl=6, renew_every_s=0.2) as (controller, runtime):
        await failover_served(http, controller)
        before = await loaded_tls(http, controller)
        report = await run_load(http, address(controller, "cluster-2", "outbound"), URL, rps=50, duration_s=6.0)
        after = await loaded_tls(http, controller)
    assert dict(report.statuses) == {200: 300} and not report.errors, (report.statuses, report.errors)
    assert set(report.bodies) == {HI.format("cluster-1"), HI.format("cluster-3")}
    # every leaf was renewed, and each proxy serves the renewed one (GET /tls tells what it loaded)
    old, new = serials(before), serials(after)
    assert old.keys() == new.keys() and all(old[k] != new[k] for k in old), (old, new)


async def test_anchor_rotation_by_the_cli_under_load_loses_no_request(tmp_path, http):
    async with federation(tmp_path) as (controller, runtime):
        await failover_served(http, controller)
        state = runtime.state_dir
        old_anchor = runtime.anchor_fingerprint
        async with api_recorded(controller):
            load = asyncio.create_task(run_load(http, address(controller, "cluster-2", "outbound"), URL, rps=50,
                                                duration_s=8.0))
            await asyncio.sleep(0.5)
            rotated = await meshtui(state, "identity", "rotate-anchor")
            assert not load.done(), "the rotation outlasted the load: nothing was tested under load"
            report = await load
        shown = json.loads((await meshtui(state, "identity", "show", "-o", "json")).out)
        tls = await loaded_tls(http, controller)
    assert rotated.code == 0, rotated
    lines = rotated.out.splitlines()
    assert [line.strip() for line in lines if "proxies reloaded" in line] == [
        "3 proxies reloaded to trust both anchors", "3 proxies reloaded to present the new leaves",
        "3 proxies reloaded to trust the new anchor only"], rotated.out
    assert dict(report.statuses) == {200: 400} and not report.errors, (report.statuses, report.errors)
    new_anchor = shown["trustAnchor"]
    assert new_anchor != old_anchor and lines[-1] == f"trust anchor rotated: {new_anchor}"
    assert not shown["rotating"] and [a["role"] for a in shown["anchors"]] == ["current"]
    assert {leaf["anchor_fingerprint"] for leaf in shown["leaves"]} == {new_anchor}
    for cluster, loaded in tls.items():
        assert loaded["trust_anchors"] == [new_anchor], cluster
        assert {i["anchor"] for i in loaded["identities"].values()} == {new_anchor}, cluster
