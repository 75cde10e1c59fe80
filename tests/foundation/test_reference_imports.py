"""DESIGN section 8: the reference scenario's resources give the expected ServiceImports."""
import pytest

from controller.errors import Conflict, NotFound
from tests.support import apply_reference, fixture_text

C1, C3 = "default/default/default/cluster-1", "default/default/default/cluster-3"


def endpoints(imp):
    return {(e["clusterKey"], e["target"]["path"]) for p in imp["spec"]["ports"] for e in p["endpoints"]}


async def test_reference_scenario_import_in_cluster_2(controller):
    await apply_reference(controller)
    imp = await controller.get("serviceimports", "httpbin", cluster="cluster-2", namespace="httpbin")
    assert imp["spec"]["type"] == "ClusterSetIP"
    assert imp["spec"]["ports"][0]["port"] == 8080
    assert endpoints(imp) == {(C1, "/cluster-1/httpbin-mesh"), (C3, "/cluster-3/httpbin-mesh")}
    gateways = {e["clusterKey"]: e["target"] for e in imp["spec"]["ports"][0]["endpoints"]}
    c1 = await controller.get("cluster", "cluster-1")
    assert gateways[C1]["host"] == c1["metadata"]["annotations"]["meshtui.io/loopback"] + ".1"
    assert gateways[C1]["port"] == 4143
    names = {(o["metadata"]["cluster"], o["metadata"]["name"]) for o in await controller.list("svcimp", namespace="httpbin")}
    assert ("cluster-2", "httpbin-cluster-1") in names and ("cluster-2", "httpbin-cluster-3") in names
    # an exporter does not import its own export; it imports the other cluster's
    own = await controller.get("serviceimports", "httpbin", cluster="cluster-1", namespace="httpbin")
    assert endpoints(own) == {(C3, "/cluster-3/httpbin-mesh")}


async def test_deleting_one_export_removes_exactly_its_endpoint(controller):
    await apply_reference(controller)
    await controller.delete("serviceexport", "httpbin", cluster="cluster-3", namespace="httpbin")
    imp = await controller.get("serviceimports", "httpbin", cluster="cluster-2", namespace="httpbin")
    assert endpoints(imp) == {(C1, "/cluster-1/httpbin-mesh")}
    other = await controller.get("serviceimports", "httpbin-cluster-3", cluster="cluster-2", namespace="httpbin")
    assert endpoints(other) == {(C3, "/cluster-3/httpbin-mesh-cluster-3")}
    await controller.delete("serviceexport", "httpbin", cluster="cluster-1", namespace="httpbin")
    with pytest.raises(NotFound):
        await controller.get("serviceimports", "httpbin", cluster="cluster-2", namespace="httpbin")


async def test_deleting_a_cluster_removes_its_endpoints_everywhere(controller):
    await apply_reference(controller)
    await controller.delete("cluster", "cluster-3")
    imp = await controller.get("serviceimports", "httpbin", cluster="cluster-2", namespace="httpbin")
    assert endpoints(imp) == {(C1, "/cluster-1/httpbin-mesh")}
    assert not [o for o in await controller.list("svcimp") if o["metadata"]["cluster"] == "cluster-3"]


async def test_target_clusters_limit_the_audience(controller):
    await apply_reference(controller)
    await controller.apply(
        """
apiVersion: flomesh.io/v1alpha1
kind: ServiceExport
metadata: {name: httpbin, namespace: httpbin}
spec:
  targetClusters: [default/default/default/cluster-1]
  rules: [{portNumber: 8080, path: /cluster-3/httpbin-mesh, pathType: Prefix}]
""",
        cluster="cluster-3",
    )
    imp2 = await controller.get("serviceimports", "httpbin", cluster="cluster-2", namespace="httpbin")
    assert endpoints(imp2) == {(C1, "/cluster-1/httpbin-mesh")}
    imp1 = await controller.get("serviceimports", "httpbin", cluster="cluster-1", namespace="httpbin")
    assert endpoints(imp1) == {(C3, "/cluster-3/httpbin-mesh")}


async def test_conflicting_export_gets_condition_and_changes_no_traffic(controller):
    await apply_reference(controller)
    before = await controller.get("serviceimports", "httpbin", cluster="cluster-2", namespace="httpbin")
    # cluster-2 exports an httpbin whose port differs from the oldest export's
    await controller.apply(
        """
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: httpbin}
spec: {ports: [{port: 9090}], selector: {app: other}}
---
apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata: {name: httpbin, namespace: httpbin}
""",
        cluster="cluster-2",
    )
    exp = await controller.get("svcexp", "httpbin", cluster="cluster-2", namespace="httpbin")
    conflict = next(c for c in exp["status"]["conditions"] if c["type"] == "Conflict")
    assert conflict["status"] == "True" and conflict["reason"] == "PortConflict"
    assert "cluster-1" in conflict["message"]  # the oldest export wins
    after = await controller.get("serviceimports", "httpbin", cluster="cluster-1", namespace="httpbin")
    assert endpoints(after) == {(C3, "/cluster-3/httpbin-mesh")}
    assert (await controller.get("serviceimports", "httpbin", cluster="cluster-2", namespace="httpbin"))["spec"] == before["spec"]
    check = {c.name: c for c in await controller.checks()}
    assert not check["exports agree with each other (no MCS conflicts)"].ok


async def test_export_without_service_is_reported(controller):
    await apply_reference(controller)
    await controller.apply(
        "apiVersion: flomesh.io/v1alpha1\nkind: ServiceExport\nmetadata: {name: ghost, namespace: httpbin}\n",
        cluster="cluster-1",
    )
    exp = await controller.get("svcexp", "ghost", cluster="cluster-1", namespace="httpbin")
    assert exp["status"]["conditions"][0]["reason"] == "NoService"
    check = {c.name: c for c in await controller.checks()}
    assert not check["exports have a Service"].ok
    assert "ghost" in check["exports have a Service"].message and check["exports have a Service"].hint


async def test_service_imports_cannot_be_written(controller):
    await apply_reference(controller)
    with pytest.raises(Exception) as e:
        await controller.apply(
            "apiVersion: flomesh.io/v1alpha1\nkind: ServiceImport\nmetadata: {name: x, namespace: httpbin}\nspec: {}\n", cluster="cluster-2"
        )
    assert "derived" in str(e.value)
    with pytest.raises(Conflict):
        await controller.delete("serviceimports", "httpbin", cluster="cluster-2", namespace="httpbin")


async def test_fsm_manifests_apply_unchanged(controller):
    """FSM's walk-through applies its documents with `kubectl apply -n httpbin`, namespace-less."""
    await controller.apply(fixture_text("fsm_clusters.yaml"))
    await controller.apply(fixture_text("fsm_gtp_failover.yaml"), cluster="cluster-2", namespace="httpbin")
    gtp = await controller.get("globaltrafficpolicies.flomesh.io", "httpbin", cluster="cluster-2", namespace="httpbin")
    assert gtp["apiVersion"] == "flomesh.io/v1alpha1"
    assert gtp["spec"] == {"lbType": "FailOver", "targets": [{"clusterKey": C1}, {"clusterKey": C3}]}
    exp = (await controller.apply(fixture_text("fsm_export_cluster-1.yaml"), cluster="cluster-1"))[0]
    assert exp["spec"]["loadBalancer"] == "RoundRobinLoadBalancer"  # defaulted, as FSM shows it
