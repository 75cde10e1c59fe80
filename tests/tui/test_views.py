"""Topology, Checks and Events read what the controller says, and follow it."""
from __future__ import annotations

from meshtui.tui.app import MeshApp

from .conftest import SIZE, wait_for, wait_rows

ORPHAN_EXPORT = """
apiVersion: flomesh.io/v1alpha1
kind: ServiceExport
metadata: {name: ghost, namespace: httpbin}
spec:
  rules: [{portNumber: 8080, path: /ghost}]
"""


async def test_topology_joins_imports_and_edge_metrics(recorded):
    app = MeshApp(recorded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        topology = app.screen.query_one("#topology")
        await wait_for(pilot, lambda: "SR" in str(topology.render()), what="edge metrics")
        lines = str(topology.render()).splitlines()
        c2 = lines.index(next(l for l in lines if l.startswith("cluster-2")))
        assert "calls 2 cluster(s)" in lines[c2]
        edge = next(l for l in lines[c2:] if "cluster-3" in l and "httpbin.httpbin " in l)
        assert "96.00%" in edge and "RPS" in edge
        assert any("cluster-1" in l and "httpbin-cluster-1.httpbin" in l and "idle" in l for l in lines[c2:])  # may call, does not
        await pilot.press("slash", *"!^httpbin-cluster", "enter")  # only edges of the plain httpbin service
        await wait_for(pilot, lambda: "httpbin-cluster" not in str(topology.render()), what="filtered edges")
        assert "96.00%" in str(topology.render())


async def test_checks_and_overview_warn_about_an_export_without_service(controller):
    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("8")
        await wait_rows(pilot, lambda rows: rows and all(r[0] == "✔" for r in rows))
        await controller.apply(ORPHAN_EXPORT, cluster="cluster-2")
        await pilot.press("r")
        rows = await wait_rows(pilot, lambda rows: any(r[0] == "✘" for r in rows))
        failing = [r for r in rows if r[0] == "✘"]
        assert [r[2] for r in failing] == ["exports have a Service"] and "cluster-2/httpbin/ghost" in failing[0][3]
        await pilot.press("1")
        await wait_for(pilot, lambda: "✘ exports have a Service" in str(app.screen.query_one("#warnings").render()), what="warning")


async def test_events_show_who_changed_what(controller):
    app = MeshApp(controller, user="alice")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("9")
        await wait_rows(pilot, lambda rows: len(rows) == 14)
        await controller.delete("gtp", "httpbin", cluster="cluster-2", namespace="httpbin", user="bob")
        rows = await wait_rows(pilot, lambda rows: len(rows) == 15, timeout=6)
        assert rows[0][1:7] == ("bob", "delete", "GlobalTrafficPolicy", "cluster-2", "httpbin", "httpbin")  # newest first
        await pilot.press("colon", *"@cluster-1", "enter")
        rows = await wait_rows(pilot, lambda rows: len(rows) == 5)
        assert {r[4] for r in rows} == {"cluster-1"}
