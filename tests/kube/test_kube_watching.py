"""ResourceWatcher against the loopback API server: list then watch, bookmarks, 410 Gone and
relist, an unreachable server, prompt stop, and two clusters side by side."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from controller.kube.client import new_api_client
from controller.kube.resources import FSM_GROUP, NAMESPACES, SERVICE_EXPORTS, SERVICE_IMPORTS, SERVICES, ResourceType
from controller.kube.rest import KubeRest
from controller.kube.watching import Backoff, ClusterWatch, EventType, KubeEvent, ResourceWatcher, key_of
from controller.kube.writer import KubeWriter
from tests.kube.helpers import events_until, eventually, next_event, synced
from tests.kubeapi import KubeAPIServer

EXPORTS = SERVICE_EXPORTS[FSM_GROUP]
FAST = Backoff(initial=0.05, cap=0.2)


def export(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": EXPORTS.api_version,
        "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def service(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"ports": [{"port": 80}]}}  # fmt: skip


class Mirror:
    """What a consumer keeps: upserts on ADDED/MODIFIED, drops on DELETED and on SYNCED."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}

    def apply(self, ev: KubeEvent) -> None:
        if ev.type in (EventType.ADDED, EventType.MODIFIED):
            assert ev.object is not None
            self.objects[key_of(ev.object)] = ev.object
        elif ev.type is EventType.DELETED:
            assert ev.object is not None
            self.objects.pop(key_of(ev.object), None)
        elif ev.type is EventType.SYNCED:
            self.objects = {k: v for k, v in self.objects.items() if k in ev.keys}

    def specs(self) -> dict[str, Any]:
        return {name: obj.get("spec") for (_, name), obj in sorted(self.objects.items())}


@pytest.fixture
async def watcher_factory(rest: KubeRest) -> AsyncIterator[Any]:
    made: list[ResourceWatcher] = []

    def make(resource: Any = EXPORTS, **options: Any) -> tuple[ResourceWatcher, asyncio.Queue[KubeEvent]]:
        queue: asyncio.Queue[KubeEvent] = asyncio.Queue()
        options.setdefault("backoff", FAST)
        w = ResourceWatcher(rest, resource, queue, **options)
        made.append(w)
        w.start()
        return w, queue

    yield make
    for w in made:
        await w.stop()


def test_backoff_grows_exponentially_is_capped_and_jittered() -> None:
    b, rng = Backoff(initial=1.0, cap=8.0), random.Random(7)
    delays = [[b.delay(n, rng) for _ in range(200)] for n in range(6)]
    for n, ds in enumerate(delays):
        ceiling = min(8.0, 2.0**n)
        assert all(ceiling / 2 <= d <= ceiling for d in ds)
        assert max(ds) - min(ds) > ceiling / 4  # jittered, not a fixed delay
    assert max(delays[5]) <= 8.0 and min(delays[5]) >= 4.0
    assert b.delay(10_000, rng) <= 8.0


async def test_list_then_watch_sees_changes_in_order(kube: KubeAPIServer, watcher_factory: Any) -> None:
    kube.write_direct(export("before", a=0))
    watcher, queue = watcher_factory()
    listed = await events_until(queue, synced)
    assert [(e.type, e.object and e.object["metadata"]["name"]) for e in listed] == [
        (EventType.ADDED, "before"), (EventType.SYNCED, None)]  # fmt: skip
    assert listed[-1].keys == {("default", "before")}

    kube.write_direct(export("web", a=1))
    kube.write_direct(export("web", a=2))
    kube.delete_direct(EXPORTS.api_version, "ServiceExport", "default", "before")
    seen = [await next_event(queue) for _ in range(3)]
    assert [(e.type, e.object["metadata"]["name"]) for e in seen if e.object] == [
        (EventType.ADDED, "web"), (EventType.MODIFIED, "web"), (EventType.DELETED, "before")]  # fmt: skip
    assert seen[1].object is not None and seen[1].object["spec"] == {"a": 2}
    assert watcher.resource_version == str(kube.store.revision)


async def test_builtin_objects_carry_api_version_and_kind(kube: KubeAPIServer, watcher_factory: Any) -> None:
    kube.write_direct(service("web", app="web"))
    _, queue = watcher_factory(SERVICES, label_selector="app=web")
    listed = await events_until(queue, synced)
    assert [(e.object["apiVersion"], e.object["kind"]) for e in listed if e.object] == [("v1", "Service")]
    kube.write_direct(service("other", app="other"))
    kube.write_direct(service("api", app="web"))
    ev = await next_event(queue)
    assert (ev.type, ev.object and ev.object["metadata"]["name"], ev.object and ev.object["kind"]) == (
        EventType.ADDED,
        "api",
        "Service",
    )


async def test_timed_out_watches_resume_from_the_last_resource_version(
    kube: KubeAPIServer, watcher_factory: Any
) -> None:
    _, queue = watcher_factory(timeout_seconds=1)
    await events_until(queue, synced)
    await eventually(lambda: len(kube.watch_log) >= 2, what="a second watch after the first timed out")
    kube.write_direct(export("web"))
    ev = await next_event(queue)
    assert ev.type is EventType.ADDED
    assert all(rv not in (None, "0") for _, rv in kube.watch_log)  # never a fresh, list-less watch
    assert queue.empty()


async def test_bookmarks_keep_the_resource_version_fresh_through_a_compaction(
    kube: KubeAPIServer, watcher_factory: Any
) -> None:
    watcher, queue = watcher_factory(timeout_seconds=1)
    await events_until(queue, synced)
    for i in range(5):  # changes to another resource move the global revision on
        kube.write_direct(service(f"svc-{i}"))
    await eventually(lambda: watcher.resource_version == str(kube.store.revision), what="a bookmark")
    kube.compact()
    watches = len(kube.watch_log)
    await eventually(lambda: len(kube.watch_log) >= watches + 2, what="a watch after the compaction")
    kube.write_direct(export("web"))
    ev = await next_event(queue)
    assert ev.type is EventType.ADDED  # no relist (it would start with a SYNCED)


async def test_without_bookmarks_a_compaction_forces_a_relist(kube: KubeAPIServer, watcher_factory: Any) -> None:
    kube.write_direct(export("kept"))
    watcher, queue = watcher_factory(timeout_seconds=1, bookmarks=False)
    await events_until(queue, synced)
    for i in range(5):
        kube.write_direct(service(f"svc-{i}"))
    kube.compact()
    relisted = await events_until(queue, synced)
    assert [e.type for e in relisted] == [EventType.ADDED, EventType.SYNCED]
    assert relisted[-1].keys == {("default", "kept")}
    assert watcher.resource_version == str(kube.store.revision)


async def test_unreachable_compacted_server_is_relisted_and_nothing_is_lost(
    kube: KubeAPIServer, watcher_factory: Any
) -> None:
    kube.write_direct(export("stays", v=1))
    kube.write_direct(export("goes"))
    watcher, queue = watcher_factory()
    mirror = Mirror()
    for ev in await events_until(queue, synced):
        mirror.apply(ev)

    await kube.set_unreachable(True)
    events = await events_until(queue, lambda e: e.type is EventType.DISCONNECTED)
    assert "cannot reach" in events[-1].error and not watcher.connected
    kube.write_direct(export("stays", v=2))  # the cluster changes while the controller is cut off
    kube.delete_direct(EXPORTS.api_version, "ServiceExport", "default", "goes")
    kube.write_direct(export("new"))
    kube.compact()
    await kube.set_unreachable(False)

    after = await events_until(queue, synced)
    for ev in after:
        mirror.apply(ev)
    assert after[0].type is EventType.RECOVERED and watcher.connected
    assert mirror.specs() == {"new": {}, "stays": {"v": 2}}
    kube.write_direct(export("later"))
    ev = await next_event(queue)
    assert (ev.type, ev.object and ev.object["metadata"]["name"]) == (EventType.ADDED, "later")


async def test_unreachable_server_is_retried_with_growing_delays(kube: KubeAPIServer, rest: KubeRest) -> None:
    queue: asyncio.Queue[KubeEvent] = asyncio.Queue()
    watcher = ResourceWatcher(rest, NAMESPACES, queue, backoff=Backoff(initial=0.1, cap=0.4))
    await kube.set_unreachable(True)
    attempts: list[float] = []
    real_list = rest.list

    def timed_list(*args: Any, **kwargs: Any) -> Any:
        attempts.append(time.monotonic())
        return real_list(*args, **kwargs)

    rest.list = timed_list  # type: ignore[method-assign]  # a timestamp per attempt, the real call still made
    watcher.start()
    try:
        first = await next_event(queue)
        assert first.type is EventType.DISCONNECTED
        await eventually(lambda: len(attempts) >= 5, what="five attempts")
        await kube.set_unreachable(False)
        back = await events_until(queue, synced)
        assert back[0].type is EventType.RECOVERED
        assert {e.type for e in back} == {EventType.RECOVERED, EventType.ADDED, EventType.SYNCED}
        assert back[-1].keys == {("", "default"), ("", "kube-system")}
    finally:
        await watcher.stop()
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.05 and all(g <= 2.0 for g in gaps)
    assert max(gaps[2:]) >= 0.2  # grew towards the 0.4 s cap


async def test_api_errors_are_failing_not_disconnected(kube: KubeAPIServer, watcher_factory: Any) -> None:
    widgets = ResourceType("example.com", "v1", "widgets", "Widget")  # a CRD this cluster lacks
    watcher, queue = watcher_factory(widgets)
    failing = await next_event(queue)
    assert failing.type is EventType.FAILING and "HTTP 404" in failing.error
    assert "could not find the requested resource" in watcher.error and watcher.connected
    await eventually(lambda: sum(1 for m, p in kube.requests if "widgets" in p) >= 3, what="retries")
    assert queue.empty()  # reported once, not once per retry


async def test_stop_is_prompt_while_a_long_watch_is_open(kube: KubeAPIServer, rest: KubeRest) -> None:
    queue: asyncio.Queue[KubeEvent] = asyncio.Queue()
    watcher = ResourceWatcher(rest, EXPORTS, queue, timeout_seconds=600)
    watcher.start()
    await events_until(queue, synced)
    await eventually(lambda: len(kube.watch_log) == 1, what="the watch request")
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await watcher.stop()
    assert time.monotonic() - started < 1.0
    assert not any(
        t.name.startswith("kube-watch-") and t.is_alive() for t in threading.enumerate() if "serviceexports" in t.name
    )


async def test_two_clusters_are_watched_independently(tmp_path: Path) -> None:
    east, west = await KubeAPIServer.start(name="east"), await KubeAPIServer.start(name="west")
    clients = [new_api_client(s.kubeconfig(tmp_path / f"{s.name}.yaml")) for s in (east, west)]
    queues: list[asyncio.Queue[KubeEvent]] = [asyncio.Queue(), asyncio.Queue()]
    rests = [KubeRest(c) for c in clients]
    watches = [
        ClusterWatch(r, (EXPORTS, SERVICE_IMPORTS[FSM_GROUP]), q, backoff=FAST)
        for r, q in zip(rests, queues, strict=True)
    ]
    try:
        for w in watches:
            w.start()
        for q in queues:
            await events_until(q, synced)
            await events_until(q, synced)
        # An export in east; glue code (the controller's job later) mirrors it as an import in west.
        east.write_direct(export("web", namespace="default"))
        seen = await next_event(queues[0])
        assert seen.type is EventType.ADDED and seen.resource == EXPORTS and seen.object is not None
        writer = KubeWriter(rests[1], cluster="west")
        await writer.apply_service_import(
            "default", seen.object["metadata"]["name"], {"type": "ClusterSetIP", "ports": []}
        )
        imported = await next_event(queues[1])
        assert imported.type is EventType.ADDED and imported.resource == SERVICE_IMPORTS[FSM_GROUP]
        assert imported.object is not None and imported.object["metadata"]["name"] == "web"
        assert queues[0].empty() and queues[1].empty()  # nothing leaked across clusters

        await east.set_unreachable(True)
        down = await events_until(queues[0], lambda e: e.type is EventType.DISCONNECTED)
        assert down[-1].type is EventType.DISCONNECTED and not watches[0].connected
        west.write_direct(export("api"))
        ev = await next_event(queues[1])
        assert ev.object is not None and ev.object["metadata"]["name"] == "api" and watches[1].connected
    finally:
        for w in watches:
            await w.stop()
        for c in clients:
            c.close()
        await east.stop()
        await west.stop()
