"""A controller's API on loopback (the real aiohttp server over a real EmbeddedController) that a
test can stop and start again on the same port, as a controller restart looks to its clients."""
from __future__ import annotations

from typing import AsyncIterator

import pytest

from controller.api import ApiServer, build_app
from controller.auth import Tokens, load_or_create_tokens
from controller.embedded import EmbeddedController
from tests.cli.conftest import headless  # noqa: F401 - the `meshtui controller` subprocess fixture
from tests.ssh.conftest import SCENARIO


class Api:
    def __init__(self, controller: EmbeddedController, tokens: Tokens) -> None:
        self.controller, self.tokens = controller, tokens
        self.server: ApiServer | None = None
        self.url = ""

    async def start(self) -> str:
        port = int(self.url.rsplit(":", 1)[1]) if self.url else 0  # a restart keeps the port
        self.server = ApiServer(build_app(self.controller, self.tokens), drain_seconds=2)
        self.url = await self.server.start("127.0.0.1", port)
        return self.url

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


@pytest.fixture(autouse=True)
def _no_user_themes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
async def api(tmp_path) -> AsyncIterator[Api]:
    controller = await EmbeddedController.open(tmp_path / "state")
    await controller.apply(SCENARIO, cluster="cluster-1")
    served = Api(controller, load_or_create_tokens(tmp_path / "state"))
    await served.start()
    yield served
    await served.stop()
    await controller.close()
