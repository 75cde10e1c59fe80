"""Two Kubernetes-backed clusters (loopback API servers, official client) and one embedded cluster
in one federation: exports in any become ServiceImports in the others, written into their API
servers or kept in the core; deletions remove them; 409 conflicts are retried; a 410 relist
ends in the final state; meshtui's own writes to a Kubernetes-backed cluster go to its API server."""

from __future__ import annotations

import pytest

from controller.errors import Conflict, InvalidResource
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

EAST_KEY, WEST_KEY, LOCAL_KEY = (f"default/default/default/{c}" for c in ("east", "west", "local"))


def core_keys(fed: KubeFederation, cluster: str, ns: str, name: str) -> set[str]:
    return import_cluster_keys(fed.core_import(cluster, ns, name))


async def export_from_east(fed: KubeFederation, name: str = "httpbin", ns: str = "httpbin") -> None:
    """As kubectl would: straight into east's API server."""
    fed.east.write_direct(namespace(ns))
    fed.east.write_direct(service(name, ns))
    fed.east.write_direct(export(name, ns))


async def test_an_export_in_kubernetes_is_imported_by_the_other_api_server_and_the_embedded_cluster(fed: KubeFederation) -> None:
    await export_from_east(fed)
    await eventually(lambda: import_cluster_keys(kube_import(fed.west, "httpbin", "httpbin")) == {EAST_KEY},
                     what="the ServiceImport written into west's API server")
    written = kube_import(fed.west, "httpbin", "httpbin")
    endpoint = written["spec"]["ports"][0]["endpoints"][0]
    assert endpoint["target"] == {"host": "10.1.0.10", "ip": "10.1.0.10", "path": "/httpbin", "port": 4143}
    assert written["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshtui"
    assert fed.west.store.get(fed.west.resource("v1", "Namespace"), None, "httpbin")  # created for the import
    await eventually(lambda: core_keys(fed, "local", "httpbin", "httpbin") == {EAST_KEY}, what="the embedded import")
    assert kube_import(fed.east, "httpbin", "httpbin") is None  # a cluster never imports its own export

    # the export is east's resource in the core, and its derived status went back through /status
    stored = fed.controller.core.get("ServiceExport", "httpbin", "east", "httpbin")
    assert stored["metadata"]["cluster"] == "east" and stored["spec"]["rules"][0]["path"] == "/httpbin"
    ex = fed.east.resource("multicluster.flomesh.io/v1alpha1", "ServiceExport")
    await eventually(lambda: {c["type"]: c["status"] for c in fed.east.store.get(ex, "httpbin", "httpbin").get("status", {}).get("conditions", [])}
                     == {"Valid": "True", "Conflict": "False"}, what="the export's status in east")
    assert ("PUT", "/apis/multicluster.flomesh.io/v1alpha1/namespaces/httpbin/serviceexports/httpbin/status") in fed.east.requests


async def test_an_embedded_export_is_imported_into_both_api_servers(fed: KubeFederation) -> None:
    await fed.controller.apply([service("web", "shop"), export("web", "shop")], cluster="local")
    for server in (fed.east, fed.west):
        await eventually(lambda: import_cluster_keys(kube_import(server, "shop", "web")) == {LOCAL_KEY},
                         what=f"the import in {server.name}")
    loopback = fed.controller.core.state.gateway_address("local")
    target = kube_import(fed.east, "shop", "web")["spec"]["ports"][0]["endpoints"][0]["target"]
    assert (target["host"], target["port"]) == (loopback.host, loopback.port)

    await fed.controller.delete("ServiceExport", "web", cluster="local", namespace="shop")
    for server in (fed.east, fed.west):
        await eventually(lambda: kube_import(server, "shop", "web") is None, what=f"the import gone from {server.name}")


async def test_deleting_the_export_in_kubernetes_removes_its_imports_everywhere(fed: KubeFederation) -> None:
    await export_from_east(fed)
    await eventually(lambda: kube_import(fed.west, "httpbin", "httpbin") is not None, what="the import in west")
    fed.east.delete_direct("multicluster.flomesh.io/v1alpha1", "ServiceExport", "httpbin", "httpbin")
    await eventually(lambda: kube_import(fed.west, "httpbin", "httpbin") is None, what="the import deleted from west")
    await eventually(lambda: fed.core_import("local", "httpbin", "httpbin") is None, what="the embedded import gone")
    assert ("ServiceExport", "east", "httpbin", "httpbin") not in fed.controller.core.store.objects


async def test_exports_in_two_kubernetes_clusters_merge_into_one_import(fed: KubeFederation) -> None:
    await export_from_east(fed)
    fed.west.write_direct(namespace("httpbin"))
    fed.west.write_direct(service("httpbin", "httpbin"))
    fed.west.write_direct(export("httpbin", "httpbin", api="multicluster.x-k8s.io/v1alpha1"))  # MCS's group
    await eventually(lambda: core_keys(fed, "local", "httpbin", "httpbin") == {EAST_KEY, WEST_KEY}, what="both endpoints")
    await eventually(lambda: import_cluster_keys(kube_import(fed.west, "httpbin", "httpbin")) == {EAST_KEY}, what="west's import")
    await eventually(lambda: import_cluster_keys(kube_import(fed.east, "httpbin", "httpbin")) == {WEST_KEY}, what="east's import")


async def test_meshtui_writes_to_a_kubernetes_backed_cluster_go_to_its_api_server(fed: KubeFederation) -> None:
    await fed.controller.apply([service("api", "shop"), export("api", "shop")], cluster="east", source="export.yaml")
    ex = fed.east.resource("multicluster.flomesh.io/v1alpha1", "ServiceExport")
    in_east = fed.east.store.get(ex, "shop", "api")  # written there at once (the namespace was created)
    assert in_east["spec"]["rules"][0]["path"] == "/api" and "cluster" not in in_east["metadata"]
    stored = fed.controller.core.get("ServiceExport", "api", "east", "shop")
    assert stored["metadata"]["uid"] == in_east["metadata"]["uid"]

    # a write that names the version it read is refused once the object changed in the cluster
    changed = {**in_east, "spec": {**in_east["spec"], "serviceAccountName": "someone"}}
    fed.east.write_direct(changed)
    stale = {**export("api", "shop"), "metadata": {**stored["metadata"]}}
    await eventually(lambda: fed.controller.core.get("ServiceExport", "api", "east", "shop")["spec"]["serviceAccountName"] == "someone",
                     what="the cluster's change seen by meshtui")
    with pytest.raises(Conflict, match="changed since you read it"):
        await fed.controller.apply([stale], cluster="east")
    fresh = fed.controller.core.get("ServiceExport", "api", "east", "shop")
    rules = [{"portNumber": 8080, "path": "/v2", "pathType": "Prefix"}]
    await fed.controller.apply([{**export("api", "shop"), "metadata": fresh["metadata"], "spec": {"rules": rules}}])
    assert fed.east.store.get(ex, "shop", "api")["spec"]["rules"][0]["path"] == "/v2"

    with pytest.raises(InvalidResource, match="embedded clusters only"):
        await fed.controller.apply([{"apiVersion": "meshtui.io/v1alpha1", "kind": "Workload", "metadata": {"name": "w"}, "spec": {}}],
                                   cluster="east", source="w.yaml")
    with pytest.raises(InvalidResource, match="embedded clusters' proxies only"):
        await fed.controller.apply([{"apiVersion": "meshtui.io/v1alpha1", "kind": "ExternalService",
                                     "metadata": {"name": "ledger", "namespace": "shop"},
                                     "spec": {"host": "127.0.0.1", "port": 9443}}], cluster="east", source="x.yaml")

    await fed.controller.delete("ServiceExport", "api", cluster="east", namespace="shop")
    with pytest.raises(Exception, match="not found"):
        fed.east.store.get(ex, "shop", "api")
    assert ("ServiceExport", "east", "shop", "api") not in fed.controller.core.store.objects


async def test_a_conflict_on_writing_an_import_is_retried(fed: KubeFederation) -> None:
    await fed.controller.apply([service("web", "shop"), export("web", "shop")], cluster="local")
    await eventually(lambda: kube_import(fed.east, "shop", "web") is not None, what="the import in east")
    path = "/apis/multicluster.flomesh.io/v1alpha1/namespaces/shop/serviceimports/web"
    fed.east.race_next_writes(2)  # the next two PUTs find the import changed under them: 409
    await fed.controller.apply([service("web", "shop", port=9090), export("web", "shop", port=9090)], cluster="local")
    await eventually(lambda: kube_import(fed.east, "shop", "web")["spec"]["ports"][0]["port"] == 9090, what="the updated import")
    assert sum(1 for m, p in fed.east.requests if (m, p) == ("PUT", path)) >= 3
    assert "writeError" not in fed.cluster_status("east")["kubernetes"]


async def test_a_410_relist_ends_in_the_final_state(fed: KubeFederation) -> None:
    await export_from_east(fed)
    await export_from_east(fed, name="other")
    await eventually(lambda: kube_import(fed.west, "httpbin", "other") is not None, what="both imports in west")
    lists_before = sum(1 for m, p in fed.east.requests if m == "GET" and p.endswith("/serviceexports"))

    await fed.east.set_unreachable(True)  # the watches break ...
    fed.east.delete_direct("multicluster.flomesh.io/v1alpha1", "ServiceExport", "httpbin", "other")
    fed.east.write_direct({**export("httpbin", "httpbin"), "spec": {"rules": [{"portNumber": 8080, "path": "/moved"}]}})
    fed.east.compact()  # ... and the history they would resume from is gone: 410 Gone, relist
    await fed.east.set_unreachable(False)

    await eventually(lambda: kube_import(fed.west, "httpbin", "other") is None, what="the vanished export's import deleted")
    await eventually(lambda: (kube_import(fed.west, "httpbin", "httpbin") or {}).get("spec", {}).get("ports", [{}])[0]
                     .get("endpoints", [{}])[0].get("target", {}).get("path") == "/moved", what="the changed export")
    assert sum(1 for m, p in fed.east.requests if m == "GET" and p.endswith("/serviceexports")) > lists_before
    assert ("ServiceExport", "east", "httpbin", "other") not in fed.controller.core.store.objects


async def test_a_changed_kubeconfig_restarts_following_and_a_removed_cluster_takes_its_objects_along(fed: KubeFederation) -> None:
    fed.west.write_direct(namespace("shop"))
    fed.west.write_direct(service("cart", "shop"))
    await eventually(lambda: ("Service", "west", "shop", "cart") in fed.controller.core.store.objects, what="west's Service")
    await fed.controller.apply([{"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "west"},
                                 "spec": {"context": "nowhere", "gatewayHost": "10.2.0.10"}}])  # fmt: skip
    await eventually(lambda: (fed.condition("west", "Reachable") or {}).get("reason") == "InvalidKubeconfig", what="marked")
    assert "nowhere" in fed.condition("west", "Reachable")["message"] and "west" not in fed.backend.syncs
    assert ("Service", "west", "shop", "cart") in fed.controller.core.store.objects  # its last known state stays

    await fed.controller.apply([{"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "west"},
                                 "spec": {"context": "west", "gatewayHost": "10.2.0.10"}}])  # fmt: skip
    await eventually(lambda: "west" in fed.backend.syncs and fed.backend.syncs["west"].listed, what="west followed again")
    await fed.controller.delete("Cluster", "west")
    await eventually(lambda: not any(k[1] == "west" for k in fed.controller.core.store.objects), what="west's objects gone")
    assert "west" not in fed.backend.syncs
