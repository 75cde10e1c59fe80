"""Mutated manifests of every kind, through EmbeddedController.apply and through the API: never a 500,
never a partial write, and an InvalidResource names the document and the field."""
from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.api import ApiServer, build_app
from controller.auth import load_or_create_tokens
from controller.embedded import EmbeddedController
from controller.errors import InvalidResource, MeshError
from tests.badinput.documents import VALID, mutated
from tests.support import apply_reference

SOURCE = "fuzz.yaml"
INNOCENT = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "innocent", "namespace": "httpbin"},
            "spec": {"ports": [{"port": 80}]}}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Served:
    """An EmbeddedController with the reference scenario, served by the API on 127.0.0.1:0, driven from a
    loop of its own so that hypothesis (synchronous) can call into it."""

    def __init__(self, state: Path):
        self.loop = asyncio.new_event_loop()
        self.controller: EmbeddedController = self.run(EmbeddedController.open(state))
        self.run(apply_reference(self.controller))
        tokens = load_or_create_tokens(state)
        self.server = ApiServer(build_app(self.controller, tokens), drain_seconds=1)
        self.url = self.run(self.server.start("127.0.0.1", 0))
        self.session = self.run(self._session(tokens.by_role["admin"]))

    async def _session(self, token: str) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def snapshot(self) -> tuple[dict, int]:
        store = self.controller.core.store
        return copy.deepcopy(store.objects), store.revision

    def close(self) -> None:
        self.run(self.session.close())
        self.run(self.server.stop())
        self.run(self.controller.close())
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("fuzz") / "state")
    yield s
    s.close()


def as_yaml(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(d, allow_unicode=True) for d in docs)


def check_refusal(served: Served, before: tuple[dict, int], message: str) -> None:
    assert served.snapshot() == before, f"partial write after a refusal: {message[:300]}"
    assert message.startswith(SOURCE), message[:300]


@pytest.mark.parametrize("kind", sorted(VALID))
def test_mutated_documents_through_apply(served: Served, kind: str) -> None:
    refused = []

    @FUZZ
    @given(case=mutated(kind))
    def run(case) -> None:
        doc, how, path = case
        before = served.snapshot()
        try:
            served.run(served.controller.apply(as_yaml([INNOCENT, doc]), cluster="cluster-2", source=SOURCE))
        except InvalidResource as e:
            refused.append(path)
            check_refusal(served, before, e.message)
            assert e.where.startswith(f"{SOURCE}: ") or e.where.startswith(f"{SOURCE} "), e.message[:300]
            assert e.field, f"no field named for {how} at {path}: {e.message[:300]}"
        except MeshError as e:
            refused.append(path)
            assert e.status < 500, e.message[:300]
            check_refusal(served, before, e.message)

    run()
    assert refused, "no mutation was refused: the generator is not reaching the validation"


@pytest.mark.parametrize("kind", sorted(VALID))
def test_mutated_documents_through_the_api(served: Served, kind: str) -> None:
    refused = []

    async def post(body: bytes) -> tuple[int, dict]:
        async with served.session.post(f"{served.url}/api/v1/apply", data=body,
                                       headers={"Content-Type": "application/json"}) as r:
            return r.status, await r.json(content_type=None)

    @FUZZ
    @given(case=mutated(kind))
    def run(case) -> None:
        doc, how, path = case
        before = served.snapshot()
        body = json.dumps({"manifests": [INNOCENT, doc], "cluster": "cluster-2", "source": SOURCE}).encode()
        status, answer = served.run(post(body))
        assert status < 500, answer
        if status >= 400:
            refused.append(status)
            check_refusal(served, before, answer["message"])
            if status == 422:
                assert " field " in answer["message"], answer["message"][:300]

    run()
    assert 422 in refused, refused


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
api_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"manifests": json_values}, optional={"cluster": json_values, "namespace": json_values,
                                                                "source": json_values}).map(lambda v: json.dumps(v).encode()),
)


def test_arbitrary_apply_bodies_through_the_api(served: Served) -> None:
    async def post(body: bytes) -> tuple[int, dict]:
        async with served.session.post(f"{served.url}/api/v1/apply", data=body,
                                       headers={"Content-Type": "application/json"}) as r:
            return r.status, await r.json(content_type=None)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=api_bodies)
    def run(body: bytes) -> None:
        before = served.snapshot()
        status, answer = served.run(post(body))
        assert status < 500, (body[:200], answer)
        if status >= 400:
            assert served.snapshot() == before
            assert answer["message"], answer

    run()
