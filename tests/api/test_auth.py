"""Bearer tokens and roles: who may call what."""
from __future__ import annotations

import json
import stat

import aiohttp
import pytest

from controller.auth import load_or_create_tokens, read_tokens
from controller.errors import Forbidden, StoreCorrupt, Unauthorized

from .conftest import FIXTURES

CLUSTERS = (FIXTURES / "fsm_clusters.yaml").read_text()


async def test_missing_and_unknown_tokens_are_refused_with_401(api):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{api.url}/api/v1/resources/clusters") as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"] == "Bearer"
            body = await resp.json()
            assert body["reason"] == "Unauthorized" and "missing bearer token" in body["message"]
        async with http.get(f"{api.url}/metrics", headers={"Authorization": "Bearer not-a-token"}) as resp:
            assert resp.status == 401
            assert (await resp.json())["message"] == "unknown token"
        async with http.get(f"{api.url}/healthz") as resp:
            assert resp.status == 200 and await resp.text() == "ok\n"
        async with http.get(f"{api.url}/readyz") as resp:
            assert resp.status == 200


async def test_unknown_token_through_the_client_raises_unauthorized(api):
    from controller.remote import RemoteController

    with pytest.raises(Unauthorized, match="unknown token"):
        await RemoteController.connect(api.url, "wrong")


async def test_viewer_reads_but_cannot_write(api):
    admin, viewer = api.client("admin"), api.client("viewer")
    await admin.apply(CLUSTERS)
    assert [c["metadata"]["name"] for c in await viewer.list("clusters")] == ["cluster-1", "cluster-2", "cluster-3"]
    assert (await viewer.get("cluster", "cluster-2"))["metadata"]["name"] == "cluster-2"
    assert [c.name for c in await viewer.checks()]
    with pytest.raises(Forbidden, match="viewer tokens cannot write") as refused:
        await viewer.apply(CLUSTERS.replace("cluster-3", "cluster-4"))
    assert refused.value.status == 403
    with pytest.raises(Forbidden, match="viewer tokens cannot write"):
        await viewer.delete("cluster", "cluster-1")
    assert len(await admin.list("clusters")) == 3


async def test_whoami_and_read_only_follow_the_role(api):
    from controller.remote import RemoteController

    viewer = await RemoteController.connect(api.url, api.tokens.viewer)
    admin = await RemoteController.connect(api.url, api.tokens.admin)
    try:
        assert (viewer.role, viewer.read_only) == ("viewer", True)
        assert (admin.role, admin.read_only) == ("admin", False)
    finally:
        await viewer.close()
        await admin.close()


async def test_audit_records_the_user_header_else_the_role(api):
    admin = api.client("admin")
    await admin.apply(CLUSTERS, user="alice")
    await admin.delete("cluster", "cluster-3")
    entries = await admin.audit(limit=10)
    assert [(e.user, e.action, e.name) for e in entries] == [
        ("alice", "apply", "cluster-1"), ("alice", "apply", "cluster-2"), ("alice", "apply", "cluster-3"),
        ("admin", "delete", "cluster-3"),
    ]
    assert [e.name for e in await admin.audit(limit=1)] == ["cluster-3"]


def test_tokens_are_private_random_and_kept(tmp_path):
    first = load_or_create_tokens(tmp_path)
    path = tmp_path / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.admin != first.viewer and len(first.admin) >= 40
    assert load_or_create_tokens(tmp_path) == first
    assert first.role_of(first.viewer) == "viewer" and first.role_of(first.admin + "x") is None


def test_a_damaged_tokens_file_is_reported_not_replaced(tmp_path):
    (tmp_path / "tokens.json").write_text(json.dumps({"admin": "a"}))
    with pytest.raises(StoreCorrupt, match="tokens.json must map admin, viewer"):
        read_tokens(tmp_path)
    assert json.loads((tmp_path / "tokens.json").read_text()) == {"admin": "a"}
