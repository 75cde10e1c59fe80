"""Bundled scenarios: they parse, apply as one all-or-nothing write, and their traffic reaches a
route in the cluster it is sent from; bad scenario files are refused with the place named."""
import pytest

from controller.demo.client import split_url
from controller.demo.scenarios import load_scenario, parse_scenario, scenario_names
from controller.embedded import EmbeddedController
from controller.errors import InvalidResource, NotFound
from controller.federation.layout import replica_plans
from proxy.routing.health import EndpointHealth
from proxy.routing.table import RouteTable
from tests.support import apply_reference


async def applied(name: str) -> EmbeddedController:
    c = await EmbeddedController.open(None, loopback_base="127.88")
    await c.apply(load_scenario(name).documents, source=name)
    return c


def test_bundled_scenarios():
    assert {"default", "fsm-blog"} <= set(scenario_names())


async def test_fsm_blog_is_design_section_8s_starting_state():
    c = await applied("fsm-blog")
    ref = await EmbeddedController.open(None, loopback_base="127.88")
    await apply_reference(ref)

    def shape(ctrl, kind):
        return sorted((o["metadata"].get("cluster"), o["metadata"].get("namespace"), o["metadata"]["name"], repr(o.get("spec")))
                      for o in ctrl.core.list(kind) if o["metadata"].get("namespace") != "curl")

    for kind in ("Cluster", "Service", "ServiceExport", "ServiceImport"):
        assert shape(c, kind) == shape(ref, kind), kind
    ours = {(o["metadata"]["cluster"], o["metadata"]["name"]): o["spec"] for o in c.core.list("Workload")}
    theirs = {(o["metadata"]["cluster"], o["metadata"]["name"]): o["spec"] for o in ref.core.list("Workload")}
    assert {k: v for k, v in ours.items() if k[1] == "httpbin"} == theirs
    assert ours[("cluster-2", "curl")]["serviceAccountName"] == "curl"
    assert [o["metadata"]["name"] for o in c.core.list("Service", "cluster-2")] == ["curl"]
    assert not c.core.list("GlobalTrafficPolicy")  # step 1 starts under Locality


async def test_default_scenario_traffic_crosses_clusters_and_has_a_failing_service():
    scenario = load_scenario("default")
    c = await applied("default")
    assert len(c.core.state.clusters) == 3
    assert any(p.error_rate == pytest.approx(0.15) for p in replica_plans(c.core.state).values())
    crossing = set()
    for flow in scenario.traffic:
        table = RouteTable(c.core.proxy_config(flow.cluster), EndpointHealth())
        authority, _ = split_url(flow.url)
        route = table.resolve(authority)
        assert route is not None, flow
        groups = {g.cluster for tier in route.tiers for g in tier} | {b.service for b in route.split}
        assert groups, flow
        crossing |= {(flow.cluster, g) for g in groups if g != flow.cluster}
    assert len(crossing) >= 3, crossing


def test_bad_scenarios_are_refused_with_the_place_named():
    with pytest.raises(InvalidResource, match=r"s.yaml document 1: field kind: a scenario starts with"):
        parse_scenario("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", "s.yaml")
    header = "kind: Scenario\nmetadata: {name: s}\ntraffic: [{from: nowhere, url: 'http://a.b/', rps: 1}]\n---\n"
    cluster = "apiVersion: flomesh.io/v1alpha1\nkind: Cluster\nmetadata: {name: c1}\n"
    with pytest.raises(InvalidResource, match=r"traffic\[0\]\.from: unknown cluster 'nowhere'"):
        parse_scenario(header + cluster, "s.yaml")
    with pytest.raises(InvalidResource, match=r"traffic\[0\]\.rps: must be a positive number"):
        parse_scenario(header.replace("nowhere", "c1").replace("rps: 1", "rps: -2") + cluster, "s.yaml")
    with pytest.raises(NotFound, match="no scenario 'nope'; bundled: default"):
        load_scenario("nope")
