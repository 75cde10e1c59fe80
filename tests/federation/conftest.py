import aiohttp
import pytest

from tests.running import federation, kill_leftovers  # noqa: F401  (kill_leftovers: imported from here by tests/h2)


@pytest.fixture
async def fed(tmp_path):
    """DESIGN section 8's starting state, running: (controller, runtime)."""
    async with federation(tmp_path) as running:
        yield running


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session
