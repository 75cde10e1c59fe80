"""A running embedded federation (DESIGN section 8's starting state) with real proxy and workload
processes, and an HTTP session; every process is gone after each test."""
from __future__ import annotations

import aiohttp
import pytest

from tests.running import federation


@pytest.fixture
async def fed(tmp_path):
    async with federation(tmp_path) as running:
        yield running


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session
