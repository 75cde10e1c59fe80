"""new_api_client: a kubeconfig file, inline kubeconfig text, or one context of a merged file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kubernetes import client

from controller.errors import InvalidResource
from controller.kube.client import new_api_client
from tests.kubeapi import KubeAPIServer, merged_kubeconfig


async def namespaces_of(api: client.ApiClient) -> list[str]:
    listed = await asyncio.to_thread(client.CoreV1Api(api).list_namespace)
    return [ns.metadata.name for ns in listed.items]


async def test_a_kubeconfig_file_and_inline_text_reach_the_server(kube: KubeAPIServer, tmp_path: Path) -> None:
    path = kube.kubeconfig(tmp_path / "config")
    with new_api_client(path) as from_file, new_api_client(path.read_text()) as from_text:
        assert await namespaces_of(from_file) == ["default", "kube-system"]
        assert await namespaces_of(from_text) == ["default", "kube-system"]
        assert from_file.configuration.host == kube.url


async def test_contexts_of_one_kubeconfig_pick_their_own_cluster(tmp_path: Path) -> None:
    east, west = await KubeAPIServer.start(), await KubeAPIServer.start()
    try:
        west.write_direct({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "only-west"}})
        path = merged_kubeconfig({"east": east, "west": west}, tmp_path / "config", current="east")
        with new_api_client(str(path)) as current, new_api_client(str(path), context="west") as chosen:
            assert "only-west" not in await namespaces_of(current)
            assert "only-west" in await namespaces_of(chosen)
    finally:
        await east.stop()
        await west.stop()


def test_bad_kubeconfigs_are_refused_naming_the_source(kube: KubeAPIServer, tmp_path: Path) -> None:
    path = kube.kubeconfig(tmp_path / "config")
    with pytest.raises(InvalidResource) as missing_context:
        new_api_client(path, context="nope")
    assert str(path) in missing_context.value.message and "nope" in missing_context.value.message
    assert missing_context.value.field == "context"
    with pytest.raises(InvalidResource) as missing_file:
        new_api_client(tmp_path / "absent")
    assert "absent" in missing_file.value.message
    with pytest.raises(InvalidResource) as not_yaml:
        new_api_client("clusters: [\n  - {")
    assert not_yaml.value.where == "inline kubeconfig" and "not valid YAML" in not_yaml.value.message
    with pytest.raises(InvalidResource) as not_mapping:
        new_api_client("- a\n- b\n")
    assert "not a kubeconfig document" in not_mapping.value.message
