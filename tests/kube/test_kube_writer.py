"""KubeWriter against the loopback API server: create-or-update, namespaces created on demand,
resourceVersion conflicts retried to success (or refused after a bound), status writes."""

from __future__ import annotations

from typing import Any

import pytest

from controller.errors import Conflict, InvalidResource, NotFound, Unavailable
from controller.kube.resources import FSM_GROUP, LINKS, MCS_GROUP, SERVICE_EXPORTS, SERVICE_IMPORTS, ResourceType
from controller.kube.rest import KubeRest
from controller.kube.writer import MANAGED_BY_LABEL, KubeWriter, service_import, updated
from tests.kubeapi import KubeAPIServer

IMPORTS = SERVICE_IMPORTS[FSM_GROUP]
SPEC = {"type": "ClusterSetIP", "ports": [{"port": 8080, "protocol": "TCP", "endpoints": []}]}


def puts(kube: KubeAPIServer) -> list[str]:
    return [path for method, path in kube.requests if method == "PUT"]


@pytest.fixture
def writer(rest: KubeRest) -> KubeWriter:
    return KubeWriter(rest, cluster="east", max_attempts=4)


def test_updated_takes_the_spec_and_merges_owned_labels() -> None:
    current = {
        "metadata": {"name": "a", "labels": {"team": "x", "v": "1"}, "resourceVersion": "7"},
        "spec": {"old": 1},
        "status": {"s": 1},
    }
    desired = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "labels": {"v": "2"}}, "spec": {"new": 2}}
    out = updated(current, desired)
    assert out == {
        "metadata": {"name": "a", "labels": {"team": "x", "v": "2"}, "resourceVersion": "7"},
        "spec": {"new": 2},
        "status": {"s": 1},
    }
    assert current["spec"] == {"old": 1}  # the input is left alone


async def test_apply_creates_the_missing_namespace_then_the_import(kube: KubeAPIServer, writer: KubeWriter) -> None:
    created = await writer.apply_service_import("shop", "cart", SPEC)
    assert created["metadata"]["namespace"] == "shop" and created["spec"] == SPEC
    assert created["metadata"]["labels"][MANAGED_BY_LABEL] == "meshtui"
    stored = kube.store.get(kube.resource(IMPORTS.api_version, "ServiceImport"), "shop", "cart")
    assert stored["metadata"]["uid"] == created["metadata"]["uid"]
    assert kube.store.get(kube.resource("v1", "Namespace"), None, "shop")["status"] == {"phase": "Active"}
    assert await writer.ensure_namespace("shop") is False
    assert await writer.ensure_namespace("fresh") is True


async def test_apply_updates_and_skips_writes_that_change_nothing(kube: KubeAPIServer, writer: KubeWriter) -> None:
    first = await writer.apply_service_import("default", "web", SPEC)
    again = await writer.apply_service_import("default", "web", SPEC)
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"] and puts(kube) == []
    spec2 = {**SPEC, "ports": [{"port": 9090, "protocol": "TCP", "endpoints": []}]}
    changed = await writer.apply_service_import("default", "web", spec2)
    assert changed["spec"] == spec2 and int(changed["metadata"]["resourceVersion"]) > int(
        first["metadata"]["resourceVersion"]
    )
    assert len(puts(kube)) == 1


async def test_apply_in_the_mcs_group(kube: KubeAPIServer, writer: KubeWriter) -> None:
    created = await writer.apply_service_import("default", "web", SPEC, group=MCS_GROUP)
    assert created["apiVersion"] == "multicluster.x-k8s.io/v1alpha1"
    assert kube.store.select(kube.resource("multicluster.x-k8s.io/v1alpha1", "ServiceImport"), None, lambda o: True)


async def test_stale_puts_get_409_and_the_writer_retries_to_success(kube: KubeAPIServer, writer: KubeWriter) -> None:
    await writer.apply_service_import("default", "web", SPEC)
    kube.race_next_writes(2)  # another writer gets in before each of the next two PUTs
    spec2 = {**SPEC, "type": "Headless"}
    result = await writer.apply_service_import("default", "web", spec2)
    assert result["spec"] == spec2
    assert result["metadata"]["annotations"]["kubeapi.test/raced-at"]  # the other writer's change is kept
    assert len(puts(kube)) == 3


async def test_conflicts_beyond_the_bound_are_refused_naming_cluster_and_object(
    kube: KubeAPIServer, writer: KubeWriter
) -> None:
    await writer.apply_service_import("default", "web", SPEC)
    kube.race_next_writes(10)
    with pytest.raises(Conflict) as err:
        await writer.apply_service_import("default", "web", {**SPEC, "type": "Headless"})
    assert "cluster east: ServiceImport default/web" in err.value.message and "4 attempts" in err.value.message
    assert len(puts(kube)) == 4


async def test_status_writes_go_through_the_status_subresource_with_retries(
    kube: KubeAPIServer, writer: KubeWriter
) -> None:
    exports: ResourceType = SERVICE_EXPORTS[FSM_GROUP]
    kube.write_direct(
        {
            "apiVersion": exports.api_version,
            "kind": "ServiceExport",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"a": 1},
        }
    )
    status = {"conditions": [{"type": "Conflict", "status": "False", "reason": "NoConflict", "message": ""}]}
    kube.race_next_writes(1)
    written = await writer.write_status(exports, "default", "web", status)
    assert written["status"] == status and written["spec"] == {"a": 1}
    assert puts(kube) == ["/apis/multicluster.flomesh.io/v1alpha1/namespaces/default/serviceexports/web/status"] * 2
    same = await writer.write_status(exports, "default", "web", status)
    assert same["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"] and len(puts(kube)) == 2
    with pytest.raises(NotFound) as err:
        await writer.write_status(exports, "default", "absent", status)
    assert "cluster east: ServiceExport default/absent" in err.value.message


async def test_delete_reports_whether_there_was_something(writer: KubeWriter) -> None:
    await writer.apply_service_import("default", "web", SPEC)
    assert await writer.delete(IMPORTS, "default", "web") is True
    assert await writer.delete(IMPORTS, "default", "web") is False


async def test_invalid_objects_and_unreachable_servers_give_clear_errors(
    kube: KubeAPIServer, writer: KubeWriter
) -> None:
    with pytest.raises(InvalidResource) as invalid:
        await writer.apply(service_import("default", "Not_A_Name", SPEC))
    assert (
        invalid.value.field == "metadata.name"
        and "cluster east: ServiceImport default/Not_A_Name" in invalid.value.message
    )
    await kube.set_unreachable(True)
    with pytest.raises(Unavailable) as down:
        await writer.apply_service_import("default", "web", SPEC)
    assert "cluster east: ServiceImport default/web: cannot reach" in down.value.message


async def test_unknown_kinds_are_refused_before_any_request(kube: KubeAPIServer, writer: KubeWriter) -> None:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "default"},
    }
    with pytest.raises(InvalidResource) as err:
        await writer.apply(obj)
    assert err.value.field == "kind" and "Deployment in apps/v1" in err.value.message
    assert kube.requests == []


async def test_cluster_scoped_custom_resources_are_applied_and_given_status(
    kube: KubeAPIServer, writer: KubeWriter
) -> None:
    link = {
        "apiVersion": LINKS.api_version,
        "kind": "Link",
        "metadata": {"name": "east-west"},
        "spec": {"target": "west"},
    }
    created = await writer.apply(link)
    assert "namespace" not in created["metadata"] and created["spec"] == {"target": "west"}
    status = {"alive": True, "probeLatencyMs": 3}
    written = await writer.write_status(LINKS, None, "east-west", status)
    assert written["status"] == status
    assert puts(kube) == ["/apis/meshtui.io/v1alpha1/links/east-west/status"]
