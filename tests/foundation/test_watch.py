"""Watch: an initial list, a bookmark, then live ADDED / MODIFIED / DELETED in order."""
import asyncio

from tests.support import apply_reference, fixture_text


async def test_watch_streams_changes_in_order(controller):
    await controller.apply(fixture_text("fsm_clusters.yaml"))
    stream = controller.watch(["gtp", "serviceimports"])
    first = await asyncio.wait_for(stream.__anext__(), 1)
    assert first.type == "BOOKMARK"  # no policies or imports yet
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    seen = []
    while not any(e.type == "ADDED" and e.object["kind"] == "GlobalTrafficPolicy" for e in seen):
        seen.append(await asyncio.wait_for(stream.__anext__(), 1))
    for cluster in ("cluster-1",):
        await controller.apply(fixture_text(f"fsm_httpbin_{cluster}.yaml"), cluster=cluster)
        await controller.apply(fixture_text(f"fsm_export_{cluster}.yaml"), cluster=cluster)
    while not any(e.type == "ADDED" and e.object["kind"] == "ServiceImport" and e.object["metadata"]["cluster"] == "cluster-2" for e in seen):
        seen.append(await asyncio.wait_for(stream.__anext__(), 1))
    await controller.delete("svcexp", "httpbin", cluster="cluster-1", namespace="httpbin")
    while not any(e.type == "DELETED" and e.object["kind"] == "ServiceImport" for e in seen):
        seen.append(await asyncio.wait_for(stream.__anext__(), 1))
    assert all(e.object["kind"] in ("GlobalTrafficPolicy", "ServiceImport") for e in seen)
    await stream.aclose()


async def test_watch_resumes_from_a_revision(controller):
    await apply_reference(controller)
    rev = controller.core.store.revision
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    stream = controller.watch(["gtp"], since=rev)
    e = await asyncio.wait_for(stream.__anext__(), 1)
    assert e.type == "ADDED" and e.object["metadata"]["name"] == "httpbin"
    await stream.aclose()
