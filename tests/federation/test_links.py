"""Links with real proxies: `meshtui link` / `get links` / `unlink` against a running controller,
gateway probes feeding the Link's status, and a gateway that dies under load: marked dead within
one probe period of its first failed probe, its traffic moved without a failed request, and
back when it recovers."""
from __future__ import annotations

import asyncio
import time

import pytest

from controller.demo.client import run_load, send
from controller.links import link_manifest
from tests.federation.mesh_support import HI, URL, api_recorded, meshtui
from tests.running import address, eventually, federation, status
from tests.support import fixture_text

pytestmark = pytest.mark.timeout(90)


async def test_link_get_links_and_unlink_through_the_cli(tmp_path):
    async with federation(tmp_path) as (controller, runtime):
        state = runtime.state_dir
        async with api_recorded(controller):
            linked = await meshtui(state, "link", "--from", "cluster-2", "--to", "cluster-1", "--probe-period", "0.2")
            assert linked.code == 0, linked
            gateway = address(controller, "cluster-1", "gateway")
            assert linked.out.strip() == (f"link/cluster-2-to-cluster-1 created: cluster-2 -> cluster-1 via gateway "
                                          f"{gateway}, probing /ready on port 4191 every 0.2s")

            async def probed() -> bool:
                st = status(controller, "Link", "cluster-2-to-cluster-1")
                return st.get("alive") is True and st.get("p99Ms") is not None

            assert await eventually(probed)
            shown = await meshtui(state, "get", "links")
            wide = await meshtui(state, "get", "links", "-o", "wide")
            again = await meshtui(state, "link", "--from", "cluster-2", "--to", "cluster-1")
            unlinked = await meshtui(state, "unlink", "--from", "cluster-2", "--to", "cluster-1")
            missing = await meshtui(state, "unlink", "--from", "cluster-2", "--to", "cluster-1")
    header, row = shown.out.splitlines()
    assert header.split() == ["NAME", "SOURCE", "TARGET", "ALIVE", "NUM_SVC", "LATENCY", "LATENCY_P50",
                              "LATENCY_P95", "LATENCY_P99", "AGE"]
    cells = row.split()
    # cluster-1 exports httpbin and httpbin-cluster-1 to everyone, cluster-2 included
    assert cells[:5] == ["cluster-2-to-cluster-1", "cluster-2", "cluster-1", "true", "2"], row
    assert all(c.endswith("ms") for c in cells[5:9]), row
    assert wide.out.splitlines()[1].split()[-4:-1] == [gateway, "0", "<none>"], wide.out
    assert again.code == 0  # linking again updates the same Link
    assert (unlinked.code, unlinked.out.strip()) == (0, "link/cluster-2-to-cluster-1 deleted")
    assert missing.code == 1 and "no link from cluster-2 to cluster-1" in missing.err


async def test_a_dead_gateway_is_marked_within_one_probe_period_and_its_traffic_moves(tmp_path, http):
    period = 1.0
    async with federation(tmp_path) as (controller, runtime):
        await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
        target = await controller.get("Cluster", "cluster-1")
        await controller.apply([link_manifest("cluster-2", target, runtime.anchor_fingerprint, period_s=period,
                                              timeout_s=0.5)])
        outbound = address(controller, "cluster-2", "outbound")

        def link() -> dict:
            return status(controller, "Link", "cluster-2-to-cluster-1")

        async def alive() -> bool:
            return link().get("alive") is True

        assert await eventually(alive)
        load = asyncio.create_task(run_load(http, outbound, URL, rps=50, duration_s=7.0))
        await asyncio.sleep(1.0)
        gateway = runtime.proxies["cluster-1"].proc
        stopped = asyncio.create_task(gateway.stop())  # the whole proxy of cluster-1: gateway and admin port

        async def failing() -> float | None:
            return time.monotonic() if link().get("consecutiveFailures") else None

        async def dead() -> float | None:
            return time.monotonic() if link().get("alive") is False else None

        first_failure = await eventually(failing, timeout=2 * period, every=0.005)
        dead_at = await eventually(dead, timeout=2 * period, every=0.005)
        assert first_failure and dead_at and dead_at - first_failure <= period, (first_failure, dead_at)
        assert link()["consecutiveFailures"] >= 3 and link()["lastError"]
        assert status(controller, "Cluster", "cluster-1")["gateway"]["alive"] is False
        await stopped
        moved = {(await send(http, outbound, URL)).body.decode().strip() for _ in range(6)}
        assert moved == {HI.format("cluster-3")}

        gateway.start()

        async def back() -> bool:
            return await alive() and HI.format("cluster-1") in {
                (await send(http, outbound, URL)).body.decode().strip() for _ in range(4)}

        if not await eventually(back, timeout=15.0):
            async with http.get(f"http://{address(controller, 'cluster-2', 'admin')}/endpoints") as r:
                health = await r.json()
            pytest.fail(f"cluster-1 did not come back: link {link()}, proxy ready {gateway.ready} "
                        f"({gateway.last_error}), cluster-2's endpoints {health}")
        report = await load
    assert dict(report.statuses) == {200: 350} and not report.errors, (report.statuses, report.errors)
    assert report.bodies[HI.format("cluster-1")] > 0 and report.bodies[HI.format("cluster-3")] > report.bodies[HI.format("cluster-1")]
