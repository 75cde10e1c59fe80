"""The pure parts of the Kubernetes backend: Kubernetes objects <-> core objects, a cluster's
mirror (group preference, lists that prune, types not served, refused objects), the health
checks, and the core's store of externally sourced objects (durable, skipping no-op writes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import InvalidResource
from controller.kube.checks import kube_checks
from controller.kube.mirror import ClusterMirror
from controller.kube.objects import content, kubernetes_backed, to_core, to_kube
from controller.kube.resources import FSM_GROUP, IMPORTS, LINKS, MCS_GROUP, NAMESPACES, SERVICE_EXPORTS, SERVICES, WATCHED
from controller.model.meta import condition
from controller.reconcile.state import FederationState
from controller.resources import ResourceCore

FSM, MCS = SERVICE_EXPORTS[FSM_GROUP], SERVICE_EXPORTS[MCS_GROUP]


def kube_export(name: str, api: str = "multicluster.flomesh.io/v1alpha1", **spec) -> dict:
    return {"apiVersion": api, "kind": "ServiceExport",
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", "resourceVersion": "17",
                         "creationTimestamp": "2024-01-01T00:00:00Z", "managedFields": [{"manager": "kubectl"}],
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "team": "a"}},
            "spec": spec, "status": {"conditions": []}}  # fmt: skip


def test_a_kubernetes_object_becomes_the_clusters_core_object() -> None:
    core = to_core("east", kube_export("web", rules=[{"portNumber": 80}]))
    assert core == {
        "apiVersion": "multicluster.flomesh.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": "web", "namespace": "shop", "cluster": "east", "uid": "uid-web",
                     "creationTimestamp": "2024-01-01T00:00:00Z", "annotations": {"team": "a"}},
        "spec": {"rules": [{"portNumber": 80, "path": "/", "pathType": "Prefix"}], "serviceAccountName": "*",
                 "targetClusters": [], "loadBalancer": "RoundRobinLoadBalancer"},
    }  # fmt: skip
    manifest = to_kube({**core, "metadata": {**core["metadata"], "resourceVersion": "9"}})
    assert manifest["metadata"] == {"name": "web", "namespace": "shop", "annotations": {"team": "a"}}
    assert manifest["spec"] == core["spec"] and "status" not in manifest
    with pytest.raises(InvalidResource, match=r"cluster east: ServiceExport shop/bad: field spec.rules\[0\].portNumber"):
        to_core("east", kube_export("bad", rules=[{"portNumber": 0}]))
    link = {"apiVersion": "meshtui.io/v1alpha1", "kind": "Link", "metadata": {"name": "l"},
            "spec": {"sourceCluster": "west", "targetCluster": "east"}}  # fmt: skip
    with pytest.raises(InvalidResource, match="must start there"):
        to_core("east", link)
    assert to_core("west", link)["metadata"] == {"name": "l"}  # federation-scoped: no cluster
    assert kubernetes_backed({"context": "prod"}) and not kubernetes_backed({"gatewayHost": "x"})


def test_the_mirror_prefers_the_first_group_and_prunes_on_list() -> None:
    m = ClusterMirror("east", (*WATCHED, IMPORTS))
    key = ("ServiceExport", "east", "shop", "web")
    assert m.put(MCS, kube_export("web", api="multicluster.x-k8s.io/v1alpha1", serviceAccountName="mcs")) == {key}
    assert m.desired(key)["spec"]["serviceAccountName"] == "mcs"
    m.put(FSM, kube_export("web", serviceAccountName="fsm"))
    assert m.desired(key)["spec"]["serviceAccountName"] == "fsm"
    assert m.remove(FSM, kube_export("web")) == {key}
    assert m.desired(key)["spec"]["serviceAccountName"] == "mcs"

    m.put(FSM, kube_export("gone"))
    assert m.synced(FSM, frozenset()) == {("ServiceExport", "east", "shop", "gone")}  # vanished while not looking
    assert not m.complete("ServiceExport")  # two more groups to list
    m.synced(MCS, frozenset({("shop", "web")}))
    assert m.unserved(SERVICE_EXPORTS["flomesh.io"]) == set() and m.complete("ServiceExport")
    assert m.core_keys("ServiceExport") == {key} and m.not_served == {SERVICE_EXPORTS["flomesh.io"]}

    m.put(FSM, kube_export("bad", rules=[{"portNumber": 0}]))
    assert m.desired(("ServiceExport", "east", "shop", "bad")) is None
    assert "portNumber" in m.refused[("ServiceExport", "east", "shop", "bad")]
    assert m.put(IMPORTS, {"metadata": {"name": "x", "namespace": "shop"}}) == set()  # kept, not fed to the core
    m.put(NAMESPACES, {"metadata": {"name": "old"}, "status": {"phase": "Terminating"}})
    assert m.terminating("old", NAMESPACES) and not m.terminating("shop", NAMESPACES)
    assert m.owns({"kind": "Link", "metadata": {"name": "l"}, "spec": {"sourceCluster": "east"}})
    assert m.core_key(LINKS, ("", "l")) == ("Link", "", "", "l") and m.core_key(SERVICES, ("a", "b"))[1] == "east"


async def test_external_objects_are_stored_durably_and_no_op_writes_are_skipped(tmp_path: Path) -> None:
    core = ResourceCore(tmp_path / "store")
    core.load()
    await core.apply("apiVersion: meshtui.io/v1alpha1\nkind: Cluster\nmetadata: {name: east}\nspec: {context: east}\n",
                     cluster=None, namespace=None)  # fmt: skip
    changed: list[set[str]] = []
    core.on_change(changed.append)
    web = to_core("east", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                           "spec": {"ports": [{"port": 80}]}})  # fmt: skip
    assert await core.sync_external([web], []) == 1
    revision = core.store.revision
    again = to_core("east", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
                             "spec": {"ports": [{"port": 80}]}})  # fmt: skip
    assert await core.sync_external([again], [("Service", "east", "shop", "nothing")]) == 0
    assert core.store.revision == revision and len(changed) == 1
    stored = core.get("Service", "web", "east", "shop")
    assert stored["metadata"]["resourceVersion"] == str(revision) and content(stored) == content(web)

    reloaded = ResourceCore(tmp_path / "store")  # a restart: the last known state is there
    reloaded.load()
    assert reloaded.get("Service", "web", "east", "shop")["spec"]["ports"][0]["port"] == 80
    assert await reloaded.sync_external([], [("Service", "east", "shop", "web")]) == 1
    assert reloaded.list("Service") == []


def test_checks_say_what_is_wrong_with_kubernetes_backed_clusters() -> None:
    state = FederationState.build([
        {"kind": "Cluster", "metadata": {"name": "east"}, "spec": {"context": "east", "gatewayHost": "10.0.0.1"}},
        {"kind": "Cluster", "metadata": {"name": "west"}, "spec": {"context": "west"}},
        {"kind": "Cluster", "metadata": {"name": "local"}, "spec": {}},
    ])  # fmt: skip
    status = {
        ("Cluster", "", "", "east"): {"conditions": [condition("Reachable", False, "Unreachable", "cannot reach https://e: refused", "T1"),
                                                     condition("Synced", False, "Unreachable", "")]},
        ("Cluster", "", "", "west"): {"conditions": [condition("Reachable", True), condition("Synced", False, "ApiError", "links.meshtui.io: HTTP 403")],
                                      "kubernetes": {"notServed": ["trafficsplits.split.smi-spec.io"]}},
    }  # fmt: skip
    results = {r.name: r for r in kube_checks(state, status, followed=True)}
    reach = results["every Kubernetes-backed cluster's API server is reachable"]
    assert not reach.ok and reach.message == "east: cannot reach https://e: refused (since T1)" and "kubeconfig" in reach.hint
    synced = results["every Kubernetes-backed cluster is in sync"]
    assert not synced.ok and synced.message == "west: links.meshtui.io: HTTP 403" and "meshtui install" in synced.hint
    crds = results["meshtui's CRDs are installed"]
    assert crds.warning and "trafficsplits" in crds.message
    assert results["Kubernetes-backed clusters name their gateway"].message.startswith("no spec.gatewayHost: west")
    assert kube_checks(FederationState.build([state.clusters["local"]]), {}, followed=True) == []
    [idle] = kube_checks(state, {}, followed=False)
    assert idle.warning and "meshtui controller" in idle.hint
