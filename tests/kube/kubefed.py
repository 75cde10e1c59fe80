"""A federation of two Kubernetes-backed clusters (two loopback API servers: `east` reached by
an inline kubeconfig, `west` by a context of $KUBECONFIG) and one embedded cluster (`local`),
in one in-process controller whose Kubernetes backend follows them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import yaml

from controller.embedded import EmbeddedController
from controller.kube.backend import KubeBackend
from controller.kube.sync import SyncTuning
from controller.kube.watching import Backoff
from tests.kubeapi import KubeAPIServer, merged_kubeconfig

Obj = dict[str, Any]
FAST = SyncTuning(backoff=Backoff(initial=0.05, cap=0.3), write_backoff=Backoff(initial=0.05, cap=0.3),
                  watch_timeout=30, connect_timeout=1.0, read_timeout=5.0)  # fmt: skip
IMPORTS_API = "multicluster.flomesh.io/v1alpha1"


WiredController = EmbeddedController  # the controller with its Kubernetes backend, as shipped


def clusters_manifest(east: KubeAPIServer) -> str:
    docs = [
        {"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "east"},
         "spec": {"kubeconfig": yaml.safe_dump(east.kubeconfig_dict("east")), "gatewayHost": "10.1.0.10", "gatewayPort": 4143}},
        {"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "west"},
         "spec": {"context": "west", "gatewayHost": "10.2.0.10", "gatewayPort": 4143}},
        {"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "local"}, "spec": {}},
    ]  # fmt: skip
    return yaml.safe_dump_all(docs)


def service(name: str, namespace: str, port: int = 8080) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"port": port, "protocol": "TCP"}]}}  # fmt: skip


def export(name: str, namespace: str, port: int = 8080, api: str = "multicluster.flomesh.io/v1alpha1") -> Obj:
    return {"apiVersion": api, "kind": "ServiceExport", "metadata": {"name": name, "namespace": namespace},
            "spec": {"rules": [{"portNumber": port, "path": f"/{name}", "pathType": "Prefix"}]}}  # fmt: skip


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def kube_import(server: KubeAPIServer, ns: str, name: str) -> Obj | None:
    r = server.resource(IMPORTS_API, "ServiceImport")
    try:
        return server.store.get(r, ns, name)
    except Exception:
        return None


def import_cluster_keys(obj: Obj | None) -> set[str]:
    if obj is None:
        return set()
    return {e["clusterKey"] for p in obj["spec"]["ports"] for e in p.get("endpoints", [])}


@dataclass
class KubeFederation:
    controller: WiredController
    east: KubeAPIServer
    west: KubeAPIServer
    state: Path
    kubeconfig: Path

    @property
    def backend(self) -> KubeBackend:
        return self.controller.kube

    def core_import(self, cluster: str, ns: str, name: str) -> Obj | None:
        return self.controller.core.imports.get((cluster, ns, name))

    def cluster_status(self, name: str) -> Obj:
        return self.controller.core.status.get(("Cluster", "", "", name), {})

    def condition(self, cluster: str, ctype: str) -> Obj | None:
        return next((c for c in self.cluster_status(cluster).get("conditions", []) if c["type"] == ctype), None)


async def start_federation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, start: bool = True) -> AsyncIterator[KubeFederation]:
    east = await KubeAPIServer.start(name="east", bookmark_interval=0.2)
    west = await KubeAPIServer.start(name="west", bookmark_interval=0.2)
    controller = None
    try:
        kubeconfig = merged_kubeconfig({"west": west}, tmp_path / "kubeconfig")
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        controller = await WiredController.open(tmp_path / "state")
        await controller.apply(clusters_manifest(east), source="clusters.yaml")
        if start:
            await controller.kube.start(tuning=FAST)
        yield KubeFederation(controller, east, west, tmp_path / "state", kubeconfig)
    finally:
        if controller is not None:
            await controller.close()
        await east.stop()
        await west.stop()


@pytest.fixture
async def fed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KubeFederation]:
    async for f in start_federation(tmp_path, monkeypatch):
        yield f
