"""RemoteController against a real API server: the Controller interface over HTTP behaves like the
embedded one, errors included."""
from __future__ import annotations

import asyncio
import socket

import pytest

from controller.errors import Conflict, Gone, InvalidResource, NotFound, Unavailable
from controller.remote import RemoteController

from .conftest import FIXTURES, apply_reference

BAD_GTP = """\
apiVersion: flomesh.io/v1alpha1
kind: GlobalTrafficPolicy
metadata:
  name: httpbin
spec:
  lbType: Sideways
"""


async def test_reference_scenario_through_the_api(api):
    remote = api.client()
    await apply_reference(remote)
    imp = await remote.get("svcimp", "httpbin", cluster="cluster-2", namespace="httpbin")
    endpoints = {e["clusterKey"]: e["target"]["path"] for e in imp["spec"]["ports"][0]["endpoints"]}
    assert endpoints == {
        "default/default/default/cluster-1": "/cluster-1/httpbin-mesh",
        "default/default/default/cluster-3": "/cluster-3/httpbin-mesh",
    }
    exports = await remote.list("serviceexports")
    assert {(o["metadata"]["cluster"], o["metadata"]["name"]) for o in exports} == {
        ("cluster-1", "httpbin"), ("cluster-1", "httpbin-cluster-1"), ("cluster-3", "httpbin"), ("cluster-3", "httpbin-cluster-3"),
    }
    assert [o["metadata"]["name"] for o in await remote.list("svcexp", cluster="cluster-3", namespace="httpbin")] == [
        "httpbin", "httpbin-cluster-3"]
    deleted = await remote.delete("svcexp", "httpbin", cluster="cluster-3", namespace="httpbin")
    assert deleted["metadata"]["cluster"] == "cluster-3"
    imp = await remote.get("svcimp", "httpbin", cluster="cluster-2", namespace="httpbin")
    assert [e["clusterKey"] for e in imp["spec"]["ports"][0]["endpoints"]] == ["default/default/default/cluster-1"]
    with pytest.raises(NotFound, match="not found"):
        await remote.get("svcexp", "httpbin", cluster="cluster-3", namespace="httpbin")


async def test_errors_come_back_as_the_same_classes_with_their_messages(api):
    remote = api.client()
    await remote.apply((FIXTURES / "fsm_clusters.yaml").read_text())
    with pytest.raises(InvalidResource) as invalid:
        await remote.apply(BAD_GTP, cluster="cluster-2", namespace="httpbin", source="gtp.yaml")
    assert invalid.value.status == 422
    with pytest.raises(InvalidResource) as in_process:
        await api.controller.apply(BAD_GTP, cluster="cluster-2", namespace="httpbin", source="gtp.yaml")
    assert invalid.value.message == in_process.value.message
    assert invalid.value.message.startswith("gtp.yaml document 1 (GlobalTrafficPolicy httpbin): field spec.lbType:")
    with pytest.raises(NotFound, match="unknown resource type 'gizmos'"):
        await remote.list("gizmos")
    first = (await remote.list("clusters"))[0]
    stale = {**first, "metadata": {**first["metadata"], "resourceVersion": "1"}, "spec": {"region": "eu"}}
    await remote.apply([{**first, "spec": {"region": "us"}}])
    with pytest.raises(Conflict, match="was changed since you read it"):
        await remote.apply([stale])
    assert (await remote.get("cluster", first["metadata"]["name"]))["spec"]["region"] == "us"


async def test_watch_streams_the_initial_list_then_changes(api):
    remote = api.client()
    await remote.apply((FIXTURES / "fsm_clusters.yaml").read_text())
    seen: list[tuple[str, str, str]] = []
    stream = remote.watch(["clusters"])
    async for event in stream:
        seen.append((event.type, event.object["kind"], event.object["metadata"]["name"]))
        if event.type == "BOOKMARK":
            break
    assert seen == [("ADDED", "Cluster", f"cluster-{i}") for i in (1, 2, 3)] + [("BOOKMARK", "Bookmark", "initial-list-done")]
    await remote.delete("cluster", "cluster-3")
    event = await asyncio.wait_for(anext(stream), 5)
    assert (event.type, event.object["metadata"]["name"]) == ("DELETED", "cluster-3")
    await stream.aclose()

    [added] = await remote.apply([{"apiVersion": "flomesh.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "cluster-9"}, "spec": {}}])
    resumed = remote.watch(["cluster"], since=int(added["metadata"]["resourceVersion"]) - 1)
    event = await asyncio.wait_for(anext(resumed), 5)
    assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "cluster-9")
    await resumed.aclose()


async def test_watch_from_forgotten_history_raises_gone(api, monkeypatch):
    from controller import watchhub

    remote = api.client()
    for i in range(3):
        await remote.apply([{"apiVersion": "flomesh.io/v1alpha1", "kind": "Cluster", "metadata": {"name": f"c{i}"}, "spec": {}}])
    monkeypatch.setattr(watchhub, "HISTORY_SECONDS", 0.0)  # as after a long time: older history is forgotten
    await remote.apply([{"apiVersion": "flomesh.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "c9"}, "spec": {}}])
    with pytest.raises(Gone, match="too old"):
        async for _ in remote.watch(since=1):
            pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_unreachable_controller_is_unavailable_with_its_url():
    url = f"http://127.0.0.1:{_closed_port()}"
    remote = RemoteController(url, "token")
    try:
        with pytest.raises(Unavailable, match=f"cannot reach the controller at {url}: Connect call failed|cannot reach the controller at {url}: .*refused"):
            await remote.list("clusters")
        with pytest.raises(Unavailable, match="cannot reach the controller"):
            async for _ in remote.watch():
                pass
    finally:
        await remote.close()


async def test_a_silent_stream_is_declared_dead():
    """A server that answers the headers and then sends nothing (a dead proxy, a frozen host)."""

    async def frozen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(30)

    server = await asyncio.start_server(frozen, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    remote = RemoteController(f"http://127.0.0.1:{port}", "token", stream_idle_timeout=0.3)
    try:
        with pytest.raises(Unavailable, match="no data from the controller .* for 0.3s"):
            async for _ in remote.watch():
                pass
    finally:
        await remote.close()
        server.close()


async def test_heartbeats_keep_a_quiet_watch_alive(start_api):
    api = await start_api(heartbeat=0.05)
    remote = api.client(stream_idle_timeout=0.3)
    stream = remote.watch(["clusters"])
    assert (await anext(stream)).type == "BOOKMARK"
    await asyncio.sleep(0.6)  # twice the idle timeout with no change: only heartbeats flow
    await remote.apply((FIXTURES / "fsm_clusters.yaml").read_text())
    event = await asyncio.wait_for(anext(stream), 5)
    assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "cluster-1")
    await stream.aclose()


async def test_open_streams_end_when_the_server_stops(api):
    remote = api.client()
    stream = remote.watch()
    assert (await anext(stream)).type == "BOOKMARK"
    loop = asyncio.get_running_loop()
    started = loop.time()
    stopping = asyncio.create_task(api.server.stop())
    with pytest.raises(Unavailable, match="ended the stream"):
        await asyncio.wait_for(anext(stream), 5)
    await stopping
    assert loop.time() - started < 2  # the drain did not wait for the stream
