"""Fixtures for the identity tests."""
from __future__ import annotations

import ssl

import pytest

from tests.identity.tls_harness import EchoServer


@pytest.fixture
async def servers():
    started: list[EchoServer] = []

    async def start(ctx: ssl.SSLContext) -> EchoServer:
        server = await EchoServer().start(ctx)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()
