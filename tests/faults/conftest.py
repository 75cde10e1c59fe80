"""A running embedded federation (DESIGN section 8's starting state) with real proxy and workload
processes, and an HTTP session; every process is gone after each test."""
from __future__ import annotations

import os
import signal

import aiohttp
import pytest

from controller.embedded import EmbeddedController
from controller.federation import EmbeddedFederation
from controller.federation.processes import find_federation_processes
from controller.settings import random_loopback_base
from tests.support import apply_reference


def kill_leftovers(state) -> list[int]:
    left = find_federation_processes(state)
    for pid in left:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


@pytest.fixture
async def fed(tmp_path):
    state = tmp_path / "state"
    controller = await EmbeddedController.open(state, loopback_base=random_loopback_base())
    runtime = EmbeddedFederation(controller, state)
    controller.attach_dataplane(runtime)
    try:
        await apply_reference(controller)
        await runtime.start()
        yield controller, runtime
    finally:
        await controller.close()
        assert kill_leftovers(state) == [], "processes left running after stop()"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session
