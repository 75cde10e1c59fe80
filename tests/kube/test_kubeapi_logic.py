"""The test API server's own pure parts: paths, selectors, merge patches, watch filtering."""

from __future__ import annotations

import pytest

from tests.kubeapi.errors import ApiError
from tests.kubeapi.patches import merge_patch
from tests.kubeapi.paths import Discovery, Target, parse
from tests.kubeapi.resources import BY_PATH, NAMESPACES
from tests.kubeapi.selectors import field_selector, label_selector
from tests.kubeapi.store import Store, watch_event

SERVICES = BY_PATH[("", "v1", "services")]
EXPORTS = BY_PATH[("multicluster.flomesh.io", "v1alpha1", "serviceexports")]
LINKS = BY_PATH[("meshtui.io", "v1alpha1", "links")]


def test_paths_address_discovery_collections_objects_and_status() -> None:
    assert parse("/apis/flomesh.io") == Discovery("group", "flomesh.io")
    assert parse("/api/v1") == Discovery("resources", "", "v1")
    assert parse("/api/v1/services") == Target(SERVICES, None, None)
    assert parse("/api/v1/namespaces/a/services/web/status") == Target(SERVICES, "a", "web", "status")
    assert parse("/api/v1/namespaces/a") == Target(NAMESPACES, None, "a")
    assert parse("/api/v1/namespaces/a/status") == Target(NAMESPACES, None, "a", "status")
    assert parse("/apis/meshtui.io/v1alpha1/links/x") == Target(LINKS, None, "x")
    assert parse("/apis/multicluster.flomesh.io/v1alpha1/namespaces/a/serviceexports") == Target(EXPORTS, "a", None)
    for unserved in ("/apis/apps/v1", "/apis/flomesh.io/v9/serviceexports", "/api/v1/namespaces/a/services/web/scale",
                     "/api/v1/services/web", "/apis/meshtui.io/v1alpha1/namespaces/a/links"):  # fmt: skip
        with pytest.raises(ApiError) as err:
            parse(unserved)
        assert err.value.code == 404, unserved


def test_label_selectors() -> None:
    obj = {"metadata": {"labels": {"app": "web", "tier": "front"}}}
    assert label_selector("app=web,tier in (front, edge)")(obj)
    assert label_selector("app==web,!legacy,tier")(obj)
    assert not label_selector("app!=web")(obj)
    assert not label_selector("tier notin (front)")(obj)
    assert label_selector("")(obj)
    with pytest.raises(ApiError) as err:
        label_selector("app=(web")
    assert err.value.code == 400 and "app=(web" in err.value.message


def test_field_selectors_know_name_and_namespace_only() -> None:
    obj = {"metadata": {"name": "web", "namespace": "a"}}
    assert field_selector("metadata.name=web,metadata.namespace!=b")(obj)
    assert not field_selector("metadata.name=db")(obj)
    with pytest.raises(ApiError):
        field_selector("spec.type=ClusterIP")


def test_merge_patch_follows_rfc_7386() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}) == {
        "a": {"c": 2, "e": 3},
        "d": [2],
    }
    assert merge_patch({"a": 1}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_watches_see_label_selector_transitions_as_added_and_deleted() -> None:
    store = Store()
    seen: list[tuple[str, str]] = []
    web = label_selector("app=web")
    store.subscribe(
        lambda c: (ev := watch_event(c, SERVICES, "default", web)) and seen.append((ev[0], ev[1]["metadata"]["name"]))
    )
    store.create(NAMESPACES, None, {"metadata": {"name": "default"}})
    store.create(SERVICES, "default", {"metadata": {"name": "s", "labels": {"app": "db"}}})
    current = store.get(SERVICES, "default", "s")
    current["metadata"]["labels"] = {"app": "web"}
    current = store.replace(SERVICES, "default", "s", current, None)
    current["metadata"]["labels"] = {"app": "db"}
    store.replace(SERVICES, "default", "s", current, None)
    assert seen == [("ADDED", "s"), ("DELETED", "s")]


def test_compaction_expires_older_revisions_only() -> None:
    store = Store()
    store.create(NAMESPACES, None, {"metadata": {"name": "a"}})
    store.create(NAMESPACES, None, {"metadata": {"name": "b"}})
    assert [c.obj["metadata"]["name"] for c in store.changes_since(1)] == ["b"]
    at = store.compact()
    assert store.changes_since(at) == []
    with pytest.raises(ApiError) as err:
        store.changes_since(at - 1)
    assert err.value.code == 410 and err.value.reason == "Expired"
