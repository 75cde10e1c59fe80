"""Shared helpers for tests that run an embedded federation with real proxy and workload
processes: start one (DESIGN section 8's starting state), find where its parts listen,
wait for a condition, and make sure no process outlives the test."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from controller.embedded import EmbeddedController
from controller.federation import EmbeddedFederation
from controller.federation.processes import find_federation_processes
from controller.settings import random_loopback_base
from tests.support import apply_reference


def kill_leftovers(state: Path) -> list[int]:
    """Kill (and return) every process still running for the federation of `state`."""
    left = find_federation_processes(state)
    for pid in left:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


@asynccontextmanager
async def federation(tmp_path: Path, *, setup: Callable[[EmbeddedController], Awaitable[None]] | None = None,
                     **runtime_options: Any) -> AsyncIterator[tuple[EmbeddedController, EmbeddedFederation]]:
    """DESIGN section 8's starting state (plus what `setup` applies), running with
    EmbeddedFederation options; every process is gone afterwards, or the test fails."""
    state = tmp_path / "state"
    controller = await EmbeddedController.open(state, loopback_base=random_loopback_base())
    runtime = EmbeddedFederation(controller, state, **runtime_options)
    controller.attach_dataplane(runtime)
    try:
        await apply_reference(controller)
        if setup is not None:
            await setup(controller)
        await runtime.start()
        yield controller, runtime
    finally:
        await controller.close()
        assert kill_leftovers(state) == [], "processes left running after stop()"


def status(controller: EmbeddedController, kind: str, name: str, cluster: str = "", namespace: str = "") -> dict:
    return controller.core.status.get((kind, cluster, namespace, name), {})


def address(controller: EmbeddedController, cluster: str, part: str) -> str:
    """Where a cluster's `gateway`, `outbound` or `admin` endpoint listens (host:port)."""
    return status(controller, "Cluster", cluster)[part]["address"]


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, every: float = 0.02) -> Any:
    """`check()`'s first truthy result, or its last result once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every)


# Fixtures, imported by the conftest.py of the test folders that want them.

@pytest.fixture
async def fed(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedController, EmbeddedFederation]]:
    """DESIGN section 8's starting state, running: (controller, runtime)."""
    async with federation(tmp_path) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
