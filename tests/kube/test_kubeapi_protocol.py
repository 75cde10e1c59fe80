"""The official `kubernetes` client, unchanged, against the loopback API server: discovery,
the REST verbs, status subresources, conflicts, and watch streams (order, bookmarks, 410)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client import ApiClient, ApiException

from tests.kubeapi import KubeAPIServer

call = asyncio.to_thread  # the client blocks; the server shares the test's event loop
FSM = ("multicluster.flomesh.io", "v1alpha1")
JSON_PATCH = "application/json-patch+json"


def export(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "multicluster.flomesh.io/v1alpha1",
        "kind": "ServiceExport",
        "metadata": {"name": name},
        "spec": spec,
    }


def status_of(e: ApiException) -> dict[str, Any]:
    return json.loads(e.body)


async def test_discovery_lists_versions_groups_and_resources(api: ApiClient) -> None:
    version = await call(client.VersionApi(api).get_code)
    assert (version.major, version.git_version) == ("1", "v1.31.0")

    core = await call(client.CoreV1Api(api).get_api_resources)
    by_name = {r.name: r for r in core.resources}
    assert core.group_version == "v1"
    assert by_name["services"].kind == "Service" and by_name["services"].namespaced
    assert not by_name["namespaces"].namespaced and "watch" in by_name["namespaces"].verbs
    assert "services/status" in by_name

    groups = {g.name: g for g in (await call(client.ApisApi(api).get_api_versions)).groups}
    assert {"discovery.k8s.io", "coordination.k8s.io", "multicluster.flomesh.io", "flomesh.io", "multicluster.x-k8s.io",
            "split.smi-spec.io", "meshtui.io"} <= set(groups)  # fmt: skip
    assert groups["multicluster.x-k8s.io"].preferred_version.group_version == "multicluster.x-k8s.io/v1alpha1"

    fsm = await call(client.CustomObjectsApi(api).get_api_resources, *FSM)
    kinds = {r.name: (r.kind, r.namespaced) for r in fsm.resources}
    assert kinds["globaltrafficpolicies"] == ("GlobalTrafficPolicy", True)
    assert kinds["clusters"] == ("Cluster", False)
    slices = await call(client.DiscoveryV1Api(api).get_api_resources)
    assert [r.name for r in slices.resources] == ["endpointslices"]


async def test_unknown_token_is_refused_with_401(kube: KubeAPIServer) -> None:
    cfg = client.Configuration()
    cfg.host, cfg.api_key = kube.url, {"BearerToken": "Bearer wrong"}
    with ApiClient(cfg) as wrong, pytest.raises(ApiException) as err:
        await call(client.CoreV1Api(wrong).list_namespace)
    assert err.value.status == 401 and status_of(err.value)["reason"] == "Unauthorized"


async def test_create_get_list_with_selector_and_already_exists(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    for name, tier in (("web", "front"), ("db", "back")):
        body = {"metadata": {"name": name, "labels": {"tier": tier}}, "spec": {"ports": [{"port": 80}]}}
        created = await call(core.create_namespaced_service, "default", body)
        assert created.metadata.uid and created.spec.ports[0].target_port == 80 and created.spec.cluster_ip
    with pytest.raises(ApiException) as err:
        await call(core.create_namespaced_service, "default", {"metadata": {"name": "web"}})
    assert err.value.status == 409 and status_of(err.value)["reason"] == "AlreadyExists"
    assert status_of(err.value)["message"] == 'services "web" already exists'

    fronts = await call(core.list_namespaced_service, "default", label_selector="tier in (front,edge)")
    assert [s.metadata.name for s in fronts.items] == ["web"]
    everything = await call(core.list_service_for_all_namespaces)
    assert [s.metadata.name for s in everything.items] == ["db", "web"]
    newest = max(int(s.metadata.resource_version) for s in everything.items)
    assert int(everything.metadata.resource_version) >= newest
    assert (await call(core.read_namespaced_service, "db", "default")).metadata.labels == {"tier": "back"}


async def test_creating_in_a_missing_namespace_is_404_naming_the_namespace(api: ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        await call(
            client.CustomObjectsApi(api).create_namespaced_custom_object,
            *FSM,
            "nowhere",
            "serviceexports",
            export("web"),
        )
    status = status_of(err.value)
    assert err.value.status == 404
    assert (status["reason"], status["message"]) == ("NotFound", 'namespaces "nowhere" not found')
    assert status["details"] == {"name": "nowhere", "kind": "namespaces"}


async def test_merge_and_json_patches_of_services_and_custom_objects(api: ApiClient) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    await call(
        core.create_namespaced_service, "default", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    )
    merged = await call(core.patch_namespaced_service, "web", "default", {"metadata": {"labels": {"a": "1"}}})
    assert merged.metadata.labels == {"a": "1"}
    jsonp = await call(
        core.patch_namespaced_service, "web", "default", [{"op": "add", "path": "/metadata/labels/b", "value": "2"}]
    )
    assert jsonp.metadata.labels == {"a": "1", "b": "2"}

    await call(
        custom.create_namespaced_custom_object, *FSM, "default", "serviceexports", export("web", serviceAccountName="*")
    )
    patched = await call(
        custom.patch_namespaced_custom_object,
        *FSM,
        "default",
        "serviceexports",
        "web",
        {"spec": {"serviceAccountName": "web"}},
    )
    assert patched["spec"] == {"serviceAccountName": "web"} and patched["metadata"]["generation"] == 2

    def json_patch(ops: list[dict[str, Any]]) -> Any:
        return custom.patch_namespaced_custom_object(
            *FSM, "default", "serviceexports", "web", ops, _content_type=JSON_PATCH
        )

    removed = await call(json_patch, [{"op": "remove", "path": "/spec/serviceAccountName"}])
    assert removed["spec"] == {}
    with pytest.raises(ApiException) as err:
        await call(json_patch, [{"op": "remove", "path": "/spec/nothing"}])
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:  # a list is no merge patch
        await call(
            custom.patch_namespaced_custom_object,
            *FSM,
            "default",
            "serviceexports",
            "web",
            [{"op": "test", "path": "/spec", "value": {}}],
        )
    assert err.value.status == 400


async def test_status_subresource_is_separate_from_the_main_resource(api: ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    body = {**export("web"), "status": {"conditions": [{"type": "Valid", "status": "True"}]}}
    created = await call(custom.create_namespaced_custom_object, *FSM, "default", "serviceexports", body)
    assert "status" not in created  # status is not written through the main resource
    conditions = {"conditions": [{"type": "Conflict", "status": "False"}]}
    with_status = await call(
        custom.patch_namespaced_custom_object_status, *FSM, "default", "serviceexports", "web", {"status": conditions}
    )
    assert with_status["status"] == conditions and with_status["metadata"]["generation"] == 1
    spec_change = {**with_status, "spec": {"serviceAccountName": "x"}, "status": {"conditions": []}}
    replaced = await call(
        custom.replace_namespaced_custom_object, *FSM, "default", "serviceexports", "web", spec_change
    )
    assert replaced["status"] == conditions and replaced["spec"] == {"serviceAccountName": "x"}


async def test_replace_with_a_stale_resource_version_is_409_conflict(api: ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    first = await call(custom.create_namespaced_custom_object, *FSM, "default", "serviceexports", export("web"))
    await call(
        custom.replace_namespaced_custom_object, *FSM, "default", "serviceexports", "web", {**first, "spec": {"a": 1}}
    )
    with pytest.raises(ApiException) as err:
        await call(
            custom.replace_namespaced_custom_object,
            *FSM,
            "default",
            "serviceexports",
            "web",
            {**first, "spec": {"a": 2}},
        )
    status = status_of(err.value)
    assert err.value.status == 409 and status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    unversioned = {**first, "metadata": {"name": "web"}}
    with pytest.raises(ApiException) as err:  # custom resources demand a resourceVersion on update
        await call(custom.replace_namespaced_custom_object, *FSM, "default", "serviceexports", "web", unversioned)
    assert err.value.status == 422


async def test_a_write_that_changes_nothing_keeps_the_resource_version(api: ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    first = await call(custom.create_namespaced_custom_object, *FSM, "default", "serviceexports", export("web", a=1))
    same = await call(custom.replace_namespaced_custom_object, *FSM, "default", "serviceexports", "web", first)
    assert same["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_delete_and_deleting_a_namespace_deletes_its_objects(api: ApiClient) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    await call(core.create_namespace, {"metadata": {"name": "shop"}})
    await call(custom.create_namespaced_custom_object, *FSM, "shop", "serviceexports", export("cart"))
    await call(custom.create_namespaced_custom_object, *FSM, "shop", "serviceexports", export("pay"))
    gone = await call(custom.delete_namespaced_custom_object, *FSM, "shop", "serviceexports", "pay")
    assert gone["metadata"]["name"] == "pay"
    with pytest.raises(ApiException) as err:
        await call(custom.get_namespaced_custom_object, *FSM, "shop", "serviceexports", "pay")
    assert (
        err.value.status == 404
        and status_of(err.value)["message"] == 'serviceexports.multicluster.flomesh.io "pay" not found'
    )
    await call(core.delete_namespace, "shop")
    left = await call(custom.list_cluster_custom_object, *FSM, "serviceexports")
    assert left["items"] == []


async def test_cluster_scoped_custom_resources(api: ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    link = {
        "apiVersion": "meshtui.io/v1alpha1",
        "kind": "Link",
        "metadata": {"name": "a-to-b", "namespace": "ignored"},
        "spec": {},
    }
    created = await call(custom.create_cluster_custom_object, "meshtui.io", "v1alpha1", "links", link)
    assert "namespace" not in created["metadata"]
    got = await call(custom.get_cluster_custom_object, "meshtui.io", "v1alpha1", "links", "a-to-b")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]


async def test_leases_and_endpoint_slices_round_trip(api: ApiClient) -> None:
    lease = {"metadata": {"name": "meshtui-leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}
    coordination = client.CoordinationV1Api(api)
    created = await call(coordination.create_namespaced_lease, "kube-system", lease)
    created.spec.holder_identity = "b"
    renewed = await call(coordination.replace_namespaced_lease, "meshtui-leader", "kube-system", created)
    assert renewed.spec.holder_identity == "b"
    with pytest.raises(ApiException) as err:  # the first holder's stale renewal loses
        created.spec.holder_identity = "a"
        await call(coordination.replace_namespaced_lease, "meshtui-leader", "kube-system", created)
    assert err.value.status == 409

    eps = {"metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4",
           "endpoints": [{"addresses": ["127.0.0.1"]}], "ports": [{"port": 8080}]}  # fmt: skip
    discovery = client.DiscoveryV1Api(api)
    await call(discovery.create_namespaced_endpoint_slice, "default", eps)
    found = await call(
        discovery.list_namespaced_endpoint_slice, "default", label_selector="kubernetes.io/service-name=web"
    )
    assert [s.endpoints[0].addresses for s in found.items] == [["127.0.0.1"]]


async def test_watch_sees_create_patch_delete_in_order_then_bookmarks(api: ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    listed = await call(custom.list_namespaced_custom_object, *FSM, "default", "serviceexports")
    since = listed["metadata"]["resourceVersion"]
    await call(custom.create_namespaced_custom_object, *FSM, "default", "serviceexports", export("web"))
    await call(custom.patch_namespaced_custom_object, *FSM, "default", "serviceexports", "web", {"spec": {"a": 1}})
    await call(custom.delete_namespaced_custom_object, *FSM, "default", "serviceexports", "web")

    def stream() -> list[tuple[str, str]]:
        w = watch.Watch()
        seen = []
        for ev in w.stream(custom.list_namespaced_custom_object, *FSM, "default", "serviceexports",
                           resource_version=since, allow_watch_bookmarks=True, timeout_seconds=1):  # fmt: skip
            seen.append((ev["type"], ev["raw_object"]["metadata"]["resourceVersion"]))
        return seen

    seen = await call(stream)
    assert [t for t, _ in seen[:3]] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(rv) for _, rv in seen[:3]]
    assert versions == sorted(versions) and versions[0] > int(since)
    bookmarks = [int(rv) for t, rv in seen[3:] if t == "BOOKMARK"]
    assert bookmarks and bookmarks[-1] >= versions[-1]


async def test_watch_from_a_compacted_resource_version_gets_410_gone(kube: KubeAPIServer, api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    old = (await call(core.list_namespaced_service, "default")).metadata.resource_version
    await call(core.create_namespaced_service, "default", {"metadata": {"name": "web"}})
    kube.compact()

    def stream() -> None:
        for _ in watch.Watch().stream(core.list_namespaced_service, "default", resource_version=old, timeout_seconds=1):
            pass

    with pytest.raises(ApiException) as err:
        await call(stream)
    assert err.value.status == 410 and "too old resource version" in err.value.reason
