"""A real API server on 127.0.0.1:0 over an EmbeddedController in tmp_path, and clients for it."""
from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest

from controller.api import ApiServer, build_app
from controller.auth import Tokens, load_or_create_tokens
from controller.embedded import EmbeddedController
from controller.remote import RemoteController

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class Api:
    """One served API: its controller, tokens and URL."""

    def __init__(self, controller: EmbeddedController, tokens: Tokens, server: ApiServer, url: str):
        self.controller, self.tokens, self.server, self.url = controller, tokens, server, url
        self.clients: list[RemoteController] = []

    def client(self, role: str = "admin", **kwargs) -> RemoteController:
        remote = RemoteController(self.url, self.tokens.by_role[role], **kwargs)
        self.clients.append(remote)
        return remote


@pytest.fixture
async def start_api(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Api]]]:
    started: list[Api] = []

    async def start(controller: EmbeddedController | None = None, **app_kwargs) -> Api:
        ctl = controller or await EmbeddedController.open(tmp_path / "state")
        tokens = load_or_create_tokens(tmp_path / "state")
        tls = app_kwargs.pop("tls", None)
        server = ApiServer(build_app(ctl, tokens, **app_kwargs), ssl=tls, drain_seconds=5)
        api = Api(ctl, tokens, server, await server.start("127.0.0.1", 0))
        started.append(api)
        return api

    yield start
    for api in started:
        for client in api.clients:
            await client.close()
        await api.server.stop()
        await api.controller.close()


@pytest.fixture
async def api(start_api) -> Api:
    return await start_api()


async def apply_reference(ctl) -> None:
    """The reference scenario's resources (DESIGN section 8), from the FSM-style fixture files."""
    await ctl.apply((FIXTURES / "fsm_clusters.yaml").read_text(), source="fsm_clusters.yaml")
    for cluster in ("cluster-1", "cluster-3"):
        for name in (f"fsm_httpbin_{cluster}.yaml", f"fsm_export_{cluster}.yaml"):
            await ctl.apply((FIXTURES / name).read_text(), cluster=cluster, source=name)
    await ctl.apply((FIXTURES / "fsm_gtp_failover.yaml").read_text(), cluster="cluster-2", namespace="httpbin",
                    source="fsm_gtp_failover.yaml")
