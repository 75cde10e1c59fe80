"""The resource checks of `meshtui check` fail for each cause with a hint: an export without a
Service or without endpoints, exports in conflict, a policy naming a cluster that left, an import
whose every exporter's gateway is dead."""
from __future__ import annotations

from controller.checks import import_checks
from controller.embedded import EmbeddedController
from tests.support import apply_reference, fixture_text


async def reference() -> EmbeddedController:
    c = await EmbeddedController.open(None, loopback_base="127.88")
    await apply_reference(c)
    return c


async def failed(c: EmbeddedController) -> dict:
    return {r.name: r for r in await c.checks() if not r.ok}


async def test_the_reference_federation_passes():
    assert await failed(await reference()) == {}


async def test_an_export_without_endpoints_fails():
    c = await reference()
    await c.apply(fixture_text("fsm_httpbin_cluster-1.yaml").replace("replicas: 1", "replicas: 0"), cluster="cluster-1")
    assert list(await failed(c)) == ["exports have endpoints"]
    check = (await failed(c))["exports have endpoints"]
    assert check.message == ("cluster-1/httpbin/httpbin: no endpoint for port 8080; "
                             "cluster-1/httpbin/httpbin-cluster-1: no endpoint for port 8080")
    assert check.hint == "run a Workload the Service selects, or give the Service Endpoints"


async def test_an_export_without_its_service_fails():
    c = await reference()
    await c.delete("Service", "httpbin-cluster-1", cluster="cluster-1", namespace="httpbin")
    check = (await failed(c))["exports have a Service"]
    assert "cluster-1/httpbin/httpbin-cluster-1" in check.message and check.hint


async def test_conflicting_exports_fail():
    c = await reference()
    await c.apply(fixture_text("fsm_httpbin_cluster-3.yaml").replace("protocol: TCP\n", "protocol: TCP\n    appProtocol: grpc\n", 1),
                  cluster="cluster-3")
    check = (await failed(c))["exports agree with each other (no MCS conflicts)"]
    assert check.message.startswith("cluster-3/httpbin/httpbin: ") and "the export of cluster-1 wins" in check.message
    assert check.hint == "make the conflicting export's Service ports and protocols match the oldest export"


async def test_a_policy_naming_a_cluster_that_left_fails():
    c = await reference()
    await c.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    await c.apply([{"apiVersion": "flomesh.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "cluster-4"}, "spec": {}}])
    await c.apply(fixture_text("fsm_gtp_failover.yaml").replace("cluster-3", "cluster-4"), cluster="cluster-2", namespace="httpbin")
    await c.delete("Cluster", "cluster-4")
    check = (await failed(c))["policies name known clusters"]
    assert check.message == "cluster-2/httpbin/httpbin -> default/default/default/cluster-4"
    assert "clusterKey" in check.hint


async def test_an_import_behind_dead_gateways_only_fails():
    c = await reference()
    imports, by_key = c.core.imports, c.core.state.cluster_by_key()
    [ok] = import_checks(imports, by_key, {"cluster-1": True, "cluster-3": True})
    assert ok.ok and ok.message == f"{len(imports)} imports reachable"
    [check] = import_checks(imports, by_key, {"cluster-1": False, "cluster-3": True})
    assert not check.ok and check.hint.startswith("see which gateways fail their probes")
    # cluster-2 still reaches httpbin through cluster-3; cluster-3's imports all come from cluster-1
    assert check.message == ("cluster-2/httpbin/httpbin-cluster-1: every exporter's gateway is dead (cluster-1); "
                             "cluster-3/httpbin/httpbin: every exporter's gateway is dead (cluster-1); "
                             "cluster-3/httpbin/httpbin-cluster-1: every exporter's gateway is dead (cluster-1)")
