"""An unreachable API server: the cluster is marked Reachable=False (in `meshtui get clusters` and
`meshtui check`, with a hint), its last known state stays (imports from it keep their endpoints),
the rest of the federation goes on, and recovery brings in what changed meanwhile. The CLI,
through the controller's API, shows Kubernetes-backed and embedded clusters side by side."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import AsyncIterator

import pytest

from controller.api import ApiServer, build_app
from controller.auth import load_or_create_tokens
from tests.kube.helpers import eventually
from tests.kube.kubefed import (
    KubeFederation,
    export,
    fed,  # noqa: F401 -- the fixture
    import_cluster_keys,
    kube_import,
    namespace,
    service,
)

MESHTUI = str(Path(sys.executable).parent / "meshtui")
EAST_KEY = "default/default/default/east"
GONE_KEY = "default/default/default/gone"


class Cli:
    def __init__(self, url: str, token: str, state: Path):
        self.url, self.token, self.state = url, token, state

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESHTUI_")}
        proc = await asyncio.create_subprocess_exec(
            MESHTUI, "--state", str(self.state), "--controller", self.url, f"--token={self.token}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def cli(fed: KubeFederation, tmp_path: Path) -> AsyncIterator[Cli]:
    tokens = load_or_create_tokens(fed.state)
    server = ApiServer(build_app(fed.controller, tokens), drain_seconds=1)
    url = await server.start("127.0.0.1", 0)
    try:
        yield Cli(url, tokens.by_role["admin"], tmp_path / "cli-state")
    finally:
        await server.stop()


def reachable(cluster_json: dict) -> dict:
    return next(c for c in cluster_json["status"]["conditions"] if c["type"] == "Reachable")


async def test_the_cli_lists_kubernetes_backed_and_embedded_clusters_side_by_side(fed: KubeFederation, cli: Cli) -> None:
    fed.east.write_direct(namespace("shop"))
    fed.east.write_direct(service("cart", "shop"))
    await fed.controller.apply([service("cart", "shop")], cluster="local")
    await fed.controller.apply([service("cart", "shop")], cluster="west")  # written into west's API server
    await eventually(lambda: len(fed.controller.core.list("Service", None, "shop")) == 3, what="three Services")

    code, out, err = await cli("get", "services", "-n", "shop")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["CLUSTER", "NAME"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["east", "local", "west"]

    await eventually(lambda: (fed.condition("east", "Reachable") or {}).get("status") == "True", what="east reachable")
    code, out, err = await cli("get", "clusters", "-o", "json")
    assert code == 0, err
    items = {c["metadata"]["name"]: c for c in json.loads(out)["items"]}
    assert set(items) == {"east", "west", "local"}
    assert reachable(items["east"])["status"] == "True" and items["east"]["status"]["kubernetes"]["server"] == fed.east.url
    assert "conditions" not in items["local"].get("status", {})  # an embedded cluster has no API server


async def test_an_unreachable_cluster_is_marked_keeps_its_state_and_recovers(fed: KubeFederation, cli: Cli) -> None:
    fed.east.write_direct(namespace("httpbin"))
    fed.east.write_direct(service("httpbin", "httpbin"))
    fed.east.write_direct(export("httpbin", "httpbin"))
    await eventually(lambda: import_cluster_keys(kube_import(fed.west, "httpbin", "httpbin")) == {EAST_KEY}, what="the import in west")

    await fed.east.set_unreachable(True)
    await eventually(lambda: (fed.condition("east", "Reachable") or {}).get("status") == "False", what="east unreachable")
    assert "showing its last known state" in fed.condition("east", "Reachable")["message"]

    code, out, err = await cli("check")
    assert code == 1
    lines = out.splitlines()
    at = next(i for i, x in enumerate(lines) if "API server is reachable" in x)
    assert lines[at].startswith("✖"), out
    assert lines[at + 1].strip().startswith(f"east: cannot reach {fed.east.url}: "), out
    assert "reconnects by itself" in lines[at + 2] and "kubeconfig" in lines[at + 2]  # the hint

    code, out, _ = await cli("get", "clusters", "-o", "json")
    east = next(c for c in json.loads(out)["items"] if c["metadata"]["name"] == "east")
    assert reachable(east)["status"] == "False" and reachable(east)["reason"] == "Unreachable"

    # its last known state stays: its export, and the imports of it with their endpoints
    assert fed.controller.core.get("ServiceExport", "httpbin", "east", "httpbin")
    assert import_cluster_keys(fed.core_import("local", "httpbin", "httpbin")) == {EAST_KEY}
    assert import_cluster_keys(kube_import(fed.west, "httpbin", "httpbin")) == {EAST_KEY}

    # nothing else stops: an embedded export still reaches west; east gets it after recovery
    await fed.controller.apply([service("web", "shop"), export("web", "shop")], cluster="local")
    await eventually(lambda: kube_import(fed.west, "shop", "web") is not None, what="west's import of the new export")
    fed.east.write_direct(export("httpbin", "httpbin") | {"spec": {"rules": [{"portNumber": 8080, "path": "/v2"}]}})

    await fed.east.set_unreachable(False)
    await eventually(lambda: (fed.condition("east", "Reachable") or {}).get("status") == "True", what="east reachable again")
    await eventually(lambda: kube_import(fed.east, "shop", "web") is not None, what="east's import written after recovery")
    await eventually(lambda: kube_import(fed.west, "httpbin", "httpbin")["spec"]["ports"][0]["endpoints"][0]["target"]["path"] == "/v2",
                     what="the change made during the outage")
    code, out, _ = await cli("check")
    assert next(x for x in out.splitlines() if "API server is reachable" in x).startswith("✔"), out


async def test_a_fresh_controller_writes_no_import_until_it_knows_every_clusters_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.kube.kubefed import FAST, start_federation

    async for f in start_federation(tmp_path, monkeypatch, start=False):
        # east exports httpbin; west holds the import an earlier controller derived when a cluster since
        # removed exported it too
        f.east.write_direct(namespace("httpbin"))
        f.east.write_direct(service("httpbin", "httpbin"))
        f.east.write_direct(export("httpbin", "httpbin"))
        stale = {"apiVersion": "multicluster.flomesh.io/v1alpha1", "kind": "ServiceImport",
                 "metadata": {"name": "httpbin", "namespace": "httpbin", "labels": {"app.kubernetes.io/managed-by": "meshtui"}},
                 "spec": {"type": "ClusterSetIP", "ports": [{"port": 8080, "protocol": "TCP", "endpoints": [
                     {"clusterKey": EAST_KEY, "target": {"host": "10.1.0.10", "ip": "10.1.0.10", "path": "/httpbin", "port": 4143}},
                     {"clusterKey": GONE_KEY, "target": {"host": "10.9.0.10", "ip": "10.9.0.10", "path": "/httpbin", "port": 4143}}]}]}}  # fmt: skip
        f.west.write_direct(namespace("httpbin"))
        f.west.write_direct(stale)
        await f.east.set_unreachable(True)
        await f.controller.kube.start(tuning=FAST)

        await eventually(lambda: "west" in f.backend.syncs and f.backend.syncs["west"].listed, what="west listed")
        await asyncio.sleep(0.3)
        assert import_cluster_keys(kube_import(f.west, "httpbin", "httpbin")) == {EAST_KEY, GONE_KEY}  # untouched
        assert f.backend.waiting_for() == ["east"]
        held = next(c for c in await f.controller.checks() if c.name == "import writes are not held back")
        assert "east" in held.message and held.warning

        await f.east.set_unreachable(False)
        await eventually(lambda: f.backend.waiting_for() == [], what="east listed")
        await eventually(lambda: kube_import(f.west, "httpbin", "httpbin")["metadata"].get("annotations", {}).get("meshtui.io/written-by")
                         == f.backend.identity, what="west's import rewritten from the whole view")  # fmt: skip
        assert import_cluster_keys(kube_import(f.west, "httpbin", "httpbin")) == {EAST_KEY}
