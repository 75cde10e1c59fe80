import pytest


@pytest.fixture
async def controller(tmp_path):
    """A fresh in-process controller over a state dir of its own."""
    from controller.embedded import EmbeddedController

    c = await EmbeddedController.open(tmp_path / "state")
    yield c
    await c.close()
