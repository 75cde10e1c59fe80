"""The embedded federation with real processes: proxies and echo replicas on loopback, routes
pushed on every apply, readiness, failover, restarts, gateway probes, golden metrics, tap."""
import asyncio
import os
import signal
import time

import pytest

from controller.demo.client import run_load, send
from controller.federation.processes import read_record, start_time
from controller.federation.tapfanin import fan_in
from proxy.events import TapDropped, TapFilter
from tests.running import eventually
from tests.support import fixture_text

URL = "http://httpbin.httpbin:8080/"
HI = "Hi, I am from {} and controlled by mesh!"
pytestmark = pytest.mark.timeout(60)


def outbound(controller, cluster: str) -> str:
    return controller.core.status[("Cluster", "", "", cluster)]["outbound"]["address"]


def admin(controller, cluster: str) -> str:
    return controller.core.status[("Cluster", "", "", cluster)]["admin"]["address"]


async def bodies(http, controller, n: int, cluster: str = "cluster-2") -> list[str]:
    out = []
    for _ in range(n):
        a = await send(http, outbound(controller, cluster), URL)
        out.append(a.body.decode().strip() if a.status == 200 else f"{a.status} {a.body.decode().strip()}")
    return out


async def local_httpbin(controller, cluster: str = "cluster-2", **spec) -> None:
    text = fixture_text("fsm_httpbin_cluster-1.yaml").replace("cluster-1", cluster)
    text = text.replace(f"Hi, I am from {cluster} and controlled by mesh!", f"Hi, I am from {cluster}!")
    for k, v in spec.items():
        text = text.replace("  port: 8080\n", f"  port: 8080\n  {k}: {v}\n", 1)
    await controller.apply(text, cluster=cluster)


async def synced(controller, runtime, cluster: str = "cluster-2") -> None:
    """Until the cluster's proxy runs the routes of the latest write."""
    handle = runtime.proxies[cluster]

    async def check() -> bool:
        return handle.acked_version == controller.core.store.revision and not handle.pending

    assert await eventually(check, timeout=5.0, every=0.001)


def workload_status(controller, cluster: str, name: str = "httpbin") -> dict:
    return controller.core.status.get(("Workload", cluster, "httpbin", name), {})


async def test_clusters_report_their_addresses_and_locality_fails_with_a_reason(fed, http):
    controller, runtime = fed
    clusters = {c["metadata"]["name"]: c["status"] for c in await controller.list("Cluster")}
    for name, st in clusters.items():
        loopback = controller.core.state.clusters[name]["metadata"]["annotations"]["meshtui.io/loopback"]
        assert st["outbound"] == {"address": f"{loopback}.1:4140", "up": True}
        assert st["gateway"]["address"] == f"{loopback}.1:4143" and st["gateway"]["up"]
        assert st["admin"] == {"address": f"{loopback}.1:4191", "up": True}
        assert st["proxy"]["configVersion"] == st["proxy"]["routesVersion"] is not None
    assert workload_status(controller, "cluster-1")["readyReplicas"] == 1
    a = await send(http, outbound(controller, "cluster-2"), URL)
    assert (a.status, a.body.decode().strip()) == (503, "no local endpoints for httpbin.httpbin:8080 under policy Locality")
    checks = {c.name: c for c in await controller.checks() if c.group == "data plane"}
    assert all(c.ok for c in checks.values()), checks
    assert checks["every proxy is running the current routes"].message == "3 proxies current"


async def test_route_change_reaches_the_proxy_within_milliseconds(fed, http):
    controller, runtime = fed
    started = time.perf_counter()
    objs = await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    version = int(objs[0]["metadata"]["resourceVersion"])

    async def running() -> bool:
        async with http.get(f"http://{admin(controller, 'cluster-2')}/config") as r:
            return (await r.json())["version"] == version

    assert await eventually(running, timeout=5.0, every=0.001)
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"route change: apply -> proxy running it: {elapsed_ms:.1f} ms; "
          f"runtime push (change -> ack): {runtime.proxies['cluster-2'].last_push_ms:.1f} ms")
    assert elapsed_ms < 1000
    seen = await bodies(http, controller, 4)
    assert set(seen) == {HI.format("cluster-1"), HI.format("cluster-3")}, seen
    assert all(a != b for a, b in zip(seen, seen[1:])), seen  # FSM's FailOver: the targets in turn


async def test_failover_when_the_local_workload_is_removed(fed, http):
    controller, runtime = fed
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    await local_httpbin(controller)

    async def local_serves() -> bool:
        return set(await bodies(http, controller, 3)) == {"Hi, I am from cluster-2!"}

    assert await eventually(local_serves)
    record = runtime.state_dir / "workloads/cluster-2/httpbin/httpbin"
    pid = read_record(next(record.glob("*.pid.json")))["pid"]
    await controller.delete("Workload", "httpbin", cluster="cluster-2", namespace="httpbin")
    await synced(controller, runtime)
    remote = await bodies(http, controller, 6)
    assert set(remote) == {HI.format("cluster-1"), HI.format("cluster-3")}, remote

    async def gone() -> bool:
        return start_time(pid) is None and not list(record.glob("*.pid.json"))

    assert await eventually(gone, timeout=5.0)


async def test_failover_when_the_local_workload_starts_failing(fed, http):
    controller, runtime = fed
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    await local_httpbin(controller)

    async def local_serves() -> bool:
        return set(await bodies(http, controller, 2)) == {"Hi, I am from cluster-2!"}

    assert await eventually(local_serves)
    await local_httpbin(controller, errorRate=1.0)
    await synced(controller, runtime)
    replica = next(r for r in runtime.replicas.values() if r.plan.cluster == "cluster-2")
    assert replica.plan.error_rate == 1.0
    assert await replica.proc.wait_ready(10.0)
    await asyncio.sleep(0.1)  # the routes with the restarted replica reach the proxy
    seen = await bodies(http, controller, 20)
    assert any(s.startswith("500 injected error") for s in seen[:6]), seen  # it was tried, and failed
    assert set(seen[-10:]) == {HI.format("cluster-1"), HI.format("cluster-3")}, seen
    async with http.get(f"http://{admin(controller, 'cluster-2')}/endpoints") as r:
        health = {e["address"]: e for e in await r.json()}
    assert health[replica.plan.address]["available"] is False


async def test_zero_failed_gets_while_a_backend_replica_is_killed(fed, http):
    controller, runtime = fed
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    await controller.apply(fixture_text("fsm_httpbin_cluster-1.yaml").replace("replicas: 1", "replicas: 2"), cluster="cluster-1")

    async def two_ready() -> bool:
        return workload_status(controller, "cluster-1").get("readyReplicas") == 2

    assert await eventually(two_ready)
    await asyncio.sleep(0.05)
    victim = next(r for r in runtime.replicas.values() if r.plan.cluster == "cluster-1")
    old_pid = victim.proc.pid

    async def kill_later() -> None:
        await asyncio.sleep(0.5)
        os.kill(old_pid, signal.SIGKILL)

    killer = asyncio.create_task(kill_later())
    report = await run_load(http, outbound(controller, "cluster-2"), URL, rps=150, duration_s=2.0, concurrency=20)
    await killer
    assert report.sent == 300
    assert dict(report.statuses) == {200: 300} and not report.errors, (report.statuses, report.errors)
    assert await victim.proc.wait_ready(10.0) and victim.proc.pid != old_pid and victim.proc.restarts >= 1

    await controller.apply(fixture_text("fsm_httpbin_cluster-1.yaml"), cluster="cluster-1")  # back to 1 replica
    pids = [r.proc.pid for r in runtime.replicas.values() if r.plan.cluster == "cluster-1"]
    await synced(controller, runtime, "cluster-1")
    assert len(pids) == 2

    async def one_left() -> bool:
        return sum(start_time(p) is not None for p in pids) == 1 and workload_status(controller, "cluster-1")["replicas"] == 1

    assert await eventually(one_left, timeout=5.0)


async def test_a_cluster_added_gets_a_proxy_and_a_cluster_deleted_loses_it(fed, http):
    controller, runtime = fed
    await controller.apply([{"apiVersion": "flomesh.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "cluster-4"}, "spec": {}}])
    await asyncio.sleep(0.01)
    assert await runtime.proxies["cluster-4"].proc.wait_ready(10.0)
    await synced(controller, runtime, "cluster-4")
    a = await send(http, outbound(controller, "cluster-4"), URL)
    assert (a.status, a.body.decode().strip()) == (503, "no local endpoints for httpbin.httpbin:8080 under policy Locality")
    pid = runtime.proxies["cluster-4"].proc.pid
    await controller.delete("Cluster", "cluster-4")

    async def stopped() -> bool:
        return "cluster-4" not in runtime.proxies and start_time(pid) is None

    assert await eventually(stopped, timeout=5.0)


async def test_a_dead_proxy_is_restarted_and_gets_its_routes_again(fed, http):
    controller, runtime = fed
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    handle = runtime.proxies["cluster-2"]
    old_pid = handle.proc.pid
    os.kill(old_pid, signal.SIGKILL)

    async def back() -> bool:
        return handle.proc.ready and handle.proc.pid != old_pid and handle.acked_version == handle.wanted_version

    assert await eventually(back, timeout=10.0)
    assert set(await bodies(http, controller, 2)) == {HI.format("cluster-1"), HI.format("cluster-3")}
    st = controller.core.status[("Cluster", "", "", "cluster-2")]["proxy"]
    assert st["restarts"] >= 1 and st["pid"] == handle.proc.pid


async def test_a_gateway_that_fails_its_probes_is_avoided(fed, http):
    controller, runtime = fed
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    link = {"apiVersion": "meshtui.io/v1alpha1", "kind": "Link", "metadata": {"name": "c2-c1"},
            "spec": {"sourceCluster": "cluster-2", "targetCluster": "cluster-1",
                     "probe": {"port": 9, "period": 0.1, "timeout": 0.2, "failureThreshold": 2}}}
    await controller.apply([link])

    async def dead() -> bool:
        return controller.core.status[("Cluster", "", "", "cluster-1")]["gateway"].get("alive") is False

    assert await eventually(dead, timeout=5.0)
    await asyncio.sleep(0.05)
    assert set(await bodies(http, controller, 4)) == {HI.format("cluster-3")}
    await controller.delete("Link", "c2-c1")

    async def alive_again() -> bool:
        return controller.core.status[("Cluster", "", "", "cluster-1")]["gateway"].get("alive") is True

    assert await eventually(alive_again, timeout=5.0)
    assert controller.core.status[("Cluster", "", "", "cluster-1")]["gateway"]["probeLatencyMs"] > 0
    await asyncio.sleep(0.05)
    assert set(await bodies(http, controller, 4)) == {HI.format("cluster-1"), HI.format("cluster-3")}


async def test_golden_metrics_count_each_request_once(fed, http):
    controller, runtime = fed
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    await synced(controller, runtime)  # else requests sent before the FailOver routes arrive get 503 and count too

    async def scraped(n: int):
        async def check() -> bool:
            hs = runtime.scraper.histories
            return len(hs) == 3 and all(len(h._totals) >= n for h in hs.values())
        return await eventually(check, timeout=5.0)

    assert await scraped(1)
    await bodies(http, controller, 40)
    marks = {c: h.last_time for c, h in runtime.scraper.histories.items()}

    async def rescraped() -> bool:
        return all(runtime.scraper.histories[c].last_time > t for c, t in marks.items())

    assert await eventually(rescraped, timeout=5.0)
    rows: list = []

    def served(scope: str) -> dict:
        key = (lambda r: (r.src_cluster, r.dst_cluster)) if scope == "edge" else (lambda r: (r.cluster, r.service))
        return {key(r): r for r in rows if r.scope == scope and (scope == "cluster" or r.namespace == "httpbin")}

    async def all_counted() -> bool:  # a response is recorded just after its last byte left: wait for that scrape
        rows[:] = await controller.golden("10s")
        return sum(r.requests for r in served("service").values()) >= 40

    assert await eventually(all_counted, timeout=5.0)
    services = served("service")
    # FailOver spreads the 40 requests over cluster-1 and cluster-3 (about half each: a route push restarts the
    # alternation); each request is counted exactly once, in the service, cluster and edge rows alike
    assert set(services) == {("cluster-1", "httpbin"), ("cluster-3", "httpbin")}
    assert sum(r.requests for r in services.values()) == 40 and min(r.requests for r in services.values()) >= 15
    assert sum(r.requests for r in served("cluster").values()) == 40
    edges = served("edge")
    assert edges[("cluster-2", "cluster-1")].requests + edges[("cluster-2", "cluster-3")].requests == 40
    assert edges[("cluster-2", "cluster-1")].success_rate == 1.0
    assert 0 < edges[("cluster-2", "cluster-3")].p50_ms <= edges[("cluster-2", "cluster-3")].p99_ms < 1000


async def test_tap_merges_every_proxy_and_a_slow_reader_loses_events_not_requests(fed, http):
    controller, runtime = fed
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    events = []

    async def collect() -> None:
        async for e in controller.tap(TapFilter(namespace="httpbin", kinds=("response_end",))):
            events.append(e)

    reader = asyncio.create_task(collect())
    await asyncio.sleep(0.3)  # subscriptions established
    await bodies(http, controller, 4)
    async def eight() -> bool:
        return len(events) >= 8  # 4 requests, each seen by cluster-2's outbound and a gateway

    assert await eventually(eight, timeout=5.0)
    reader.cancel()
    seen = {(e.direction, e.cluster, e.dst_cluster) for e in events}
    assert {("outbound", "cluster-2", "cluster-1"), ("outbound", "cluster-2", "cluster-3"),
            ("gateway", "cluster-1", "cluster-1"), ("gateway", "cluster-3", "cluster-3")} <= seen
    assert all(e.kind == "response_end" and e.status == 200 for e in events)

    slow = fan_in(runtime.session, runtime._admins, TapFilter(namespace="httpbin"), buffer=5)
    first = asyncio.ensure_future(slow.__anext__())
    await asyncio.sleep(0.3)
    await bodies(http, controller, 1)  # 6 events: request_init, response_init, response_end at 2 proxies
    await first
    served = await bodies(http, controller, 30)  # the proxies do not wait for the slow reader
    assert len(served) == 30 and set(served) == {HI.format("cluster-1"), HI.format("cluster-3")}
    await asyncio.sleep(0.3)
    dropped = await slow.__anext__()
    assert isinstance(dropped, TapDropped) and dropped.dropped == 30 * 6
    rest = [await slow.__anext__() for _ in range(5)]
    assert all(not isinstance(e, TapDropped) for e in rest)
    await slow.aclose()
