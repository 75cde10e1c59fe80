"""The RBAC `meshtui install` prints grants exactly what the controller uses: a whole run (sync,
import and status writes, users' writes of every kind through meshtui, leader election) against
an API server that logs every request, translated to RBAC verbs, equals the ClusterRole's and
the lease Role's rules — nothing used is missing, nothing granted is unused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import yaml
from aiohttp import web

from controller.install import InstallOptions, manifests
from controller.leader import LeaderOptions
from tests.kube.helpers import eventually
from tests.kube.kubefed import FAST, WiredController, export, kube_import, service
from tests.kubeapi import KubeAPIServer

Obj = dict[str, Any]
LEASE_NAME = "meshtui-controller"
SHORT = {"multicluster.flomesh.io": "fsm", "flomesh.io": "flomesh", "multicluster.x-k8s.io": "mcs"}


class LoggingKubeAPIServer(KubeAPIServer):
    """The test API server, also keeping each request's query (to tell list from watch)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.calls.append((request.method, request.path, dict(request.query)))
        return await super()._handle(request)


def rbac_verb(method: str, path: str, query: dict[str, str]) -> tuple[str, str, str] | None:
    """(API group, resource[/subresource], verb) as RBAC sees a request; None for discovery."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    named = len(rest) > 1
    verb = {"GET": "watch" if query.get("watch") in ("true", "1") else ("get" if named else "list"),
            "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if named else "deletecollection"}[method]  # fmt: skip
    return group, resource, verb


def granted(rules: list[Obj]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


@pytest.fixture
async def logged(tmp_path: Path) -> AsyncIterator[tuple[LoggingKubeAPIServer, Path]]:
    server = LoggingKubeAPIServer(bookmark_interval=0.2)
    await server.listen()
    try:
        yield server, server.kubeconfig(tmp_path / "kubeconfig")
    finally:
        await server.stop()


def user_objects(generation: int) -> list[Obj]:
    """One object of every kind users may write into a Kubernetes-backed cluster."""
    weight, address, lb = (100, "10.0.0.1", "Locality") if generation == 1 else (50, "10.0.0.2", "FailOver")
    targets = [] if generation == 1 else [{"clusterKey": "default/default/default/local"}]
    out = [service("svc", "apps", port=80 + generation),
           {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "svc-1", "namespace": "apps", "labels": {"kubernetes.io/service-name": "svc"}},
            "addressType": "IPv4", "endpoints": [{"addresses": [address]}], "ports": [{"port": 80}]},
           {"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": {"name": "svc", "namespace": "apps"},
            "spec": {"service": "svc", "backends": [{"service": "svc", "weight": weight}]}},
           {"apiVersion": "meshtui.io/v1alpha1", "kind": "Link", "metadata": {"name": "east-to-local"},
            "spec": {"sourceCluster": "east", "targetCluster": "local", "probe": {"period": float(generation)}}}]  # fmt: skip
    for group in ("multicluster.flomesh.io", "flomesh.io", "multicluster.x-k8s.io"):
        name = f"svc-{SHORT[group]}"
        out += [service(name, "apps"), export(name, "apps", api=f"{group}/v1alpha1")]
        out[-1]["spec"]["serviceAccountName"] = "*" if generation == 1 else "client"
    for group in ("multicluster.flomesh.io", "flomesh.io"):
        out.append({"apiVersion": f"{group}/v1alpha1", "kind": "GlobalTrafficPolicy",
                    "metadata": {"name": f"svc-{SHORT[group]}", "namespace": "apps"},
                    "spec": {"lbType": lb, "targets": targets}})  # fmt: skip
    return out


def statuses_written(server: KubeAPIServer) -> bool:
    kinds = [(g, "ServiceExport") for g in SHORT] + [(g, "GlobalTrafficPolicy") for g in list(SHORT)[:2]]
    for group, kind in kinds:
        try:
            if not server.store.get(server.resource(f"{group}/v1alpha1", kind), "apps", f"svc-{SHORT[group]}").get("status"):
                return False
        except Exception:
            return False
    return True


async def test_the_cluster_role_grants_exactly_what_a_whole_run_uses(logged: tuple[LoggingKubeAPIServer, Path], tmp_path: Path) -> None:
    server, kubeconfig = logged
    controller = await WiredController.open(tmp_path / "state")
    try:
        await controller.apply([
            {"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "east"},
             "spec": {"kubeconfig": str(kubeconfig), "gatewayHost": "10.1.0.10"}},
            {"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "local"}, "spec": {}},
        ])  # fmt: skip
        leader = LeaderOptions(namespace="kube-system", name=LEASE_NAME, kubeconfig=str(kubeconfig),
                               lease_duration=2.0, renew_period=0.2, identity="me")  # fmt: skip
        await controller.kube.start(leader=leader, tuning=FAST)
        await eventually(lambda: controller.kube.leader.is_leader and controller.kube.syncs["east"].listed, what="leading, listed")

        # derived imports: created (with their namespace), updated, deleted
        await controller.apply([service("web", "shop"), export("web", "shop")], cluster="local")
        await eventually(lambda: kube_import(server, "shop", "web") is not None, what="the import created")
        await controller.apply([service("web", "shop", port=9090), export("web", "shop", port=9090)], cluster="local")
        await eventually(lambda: kube_import(server, "shop", "web")["spec"]["ports"][0]["port"] == 9090, what="updated")

        # users' writes of every kind: created, derived statuses written back, updated, deleted
        await controller.apply(user_objects(1), cluster="east", source="objects.yaml")
        await eventually(lambda: statuses_written(server), what="every export's and policy's status")
        await controller.apply(user_objects(2), cluster="east", source="objects.yaml")
        for obj in user_objects(2):
            md = obj["metadata"]
            await controller.delete(obj["kind"], md["name"], cluster=None if obj["kind"] == "Link" else "east",
                                    namespace=md.get("namespace"))  # fmt: skip

        await controller.delete("ServiceExport", "web", cluster="local", namespace="shop")
        await eventually(lambda: kube_import(server, "shop", "web") is None, what="the import deleted")
    finally:
        await controller.close()  # releases the lease

    used = {v for call in server.calls if (v := rbac_verb(*call)) is not None}
    docs = manifests(InstallOptions(cluster="east", lease_name=LEASE_NAME))
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    lease_role = next(d for d in docs if d["kind"] == "Role")
    cluster_used = {u for u in used if u[1] != "leases"}
    assert cluster_used - granted(role["rules"]) == set(), "used but not granted"
    assert granted(role["rules"]) - cluster_used == set(), "granted but never used"
    assert {u for u in used if u[1] == "leases"} == granted(lease_role["rules"])
    assert all(r.get("resourceNames") == [LEASE_NAME] for r in lease_role["rules"] if "create" not in r["verbs"])
    assert yaml.safe_load(yaml.safe_dump(role)) == role
