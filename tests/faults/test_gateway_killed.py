"""A backend cluster's gateway (its proxy process) SIGKILLed under FailOver and ActiveActive load: no idempotent
request fails, the supervisor restarts the proxy, and traffic to that cluster comes back."""
from __future__ import annotations

import asyncio
import os
import signal

import pytest

from controller.demo.client import run_load, send
from tests.running import address, eventually
from tests.support import fixture_text

pytestmark = pytest.mark.timeout(60)
URL = "http://httpbin.httpbin:8080/"
HI = "Hi, I am from {} and controlled by mesh!"
LONG = os.environ.get("MESHTUI_LONG_TESTS") == "1"
LOAD_S = 8.0 if LONG else 2.5


@pytest.mark.parametrize("policy,victim", [("fsm_gtp_failover.yaml", "cluster-1"), ("fsm_gtp_activeactive.yaml", "cluster-3")])
async def test_no_get_fails_while_a_backend_gateway_is_killed_and_traffic_returns(fed, http, policy, victim):
    controller, runtime = fed
    await controller.apply(fixture_text(policy), cluster="cluster-2", namespace="httpbin")
    handle = runtime.proxies[victim]

    async def routed() -> bool:
        seen = {(await send(http, address(controller, "cluster-2", "outbound"), URL)).body.decode().strip() for _ in range(6)}
        return seen == {HI.format("cluster-1"), HI.format("cluster-3")}

    assert await eventually(routed, timeout=15.0), "the policy did not take effect"
    old_pid = handle.proc.pid

    async def kill_later() -> None:
        await asyncio.sleep(0.4)
        os.kill(old_pid, signal.SIGKILL)

    killer = asyncio.create_task(kill_later())
    report = await run_load(http, address(controller, "cluster-2", "outbound"), URL, rps=120, duration_s=LOAD_S, concurrency=20)
    await killer
    assert report.sent == int(120 * LOAD_S)
    assert dict(report.statuses) == {200: report.sent} and not report.errors, (report.statuses, report.errors)

    async def restarted() -> bool:
        return handle.proc.ready and handle.proc.pid != old_pid and handle.acked_version == handle.wanted_version

    assert await eventually(restarted, timeout=15.0), "the supervisor did not bring the killed proxy back with its routes"

    async def traffic_back() -> bool:
        answers = [(await send(http, address(controller, "cluster-2", "outbound"), URL)).body.decode().strip() for _ in range(10)]
        return HI.format(victim) in answers

    assert await eventually(traffic_back, timeout=15.0), f"no answer from {victim} after its gateway came back"
