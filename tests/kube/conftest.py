"""Fixtures: API servers on loopback and official-client ApiClients pointed at them."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
from kubernetes.client import ApiClient

from controller.kube.client import new_api_client
from controller.kube.rest import KubeRest
from tests.kubeapi import KubeAPIServer


@pytest.fixture
async def kube() -> AsyncIterator[KubeAPIServer]:
    server = await KubeAPIServer.start(bookmark_interval=0.2)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def kubeconfig(kube: KubeAPIServer, tmp_path: Path) -> Path:
    return kube.kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[ApiClient]:
    client = new_api_client(kubeconfig)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def rest(api: ApiClient) -> KubeRest:
    return KubeRest(api, connect_timeout=1.0, read_timeout=5.0)
