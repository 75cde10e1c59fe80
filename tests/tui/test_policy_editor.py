"""The GlobalTrafficPolicy editor, checked through the controller and the routes it computes."""
from __future__ import annotations

from textual.widgets import Checkbox, Input, Select

from meshtui.tui.app import MeshApp
from meshtui.tui.widgets.policy import PolicyEditor, TargetRow

from .conftest import CLUSTER2_HTTPBIN, SIZE, NotifyLog, wait_for, wait_rows


async def test_failover_to_active_active_changes_routes(controller):
    await controller.apply(CLUSTER2_HTTPBIN, cluster="cluster-2")
    route = next(r for r in controller.core.proxy_config("cluster-2").routes if r.name == "httpbin")
    assert route.policy == "FailOver" and [[g.cluster for g in t] for t in route.tiers] == [["cluster-2"], ["cluster-1", "cluster-3"]]

    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_rows(pilot, lambda rows: any("FailOver" in r for r in rows))
        editor = app.screen.query_one(PolicyEditor)
        await wait_for(pilot, lambda: editor.context is not None and editor.context.name == "httpbin", what="editor loaded")
        assert "cluster-2 (local)" in str(editor.query_one("#policy-share").render())  # FailOver with local endpoints: all local

        editor.query_one("#lb-type", Select).value = "ActiveActive"
        await pilot.pause()
        assert editor.dirty
        share = str(editor.query_one("#policy-share").render())
        assert "33.3%" in share  # local 100 + two targets at the default 100
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not editor.dirty, what="applied")

    stored = await controller.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin")
    assert stored["spec"]["lbType"] == "ActiveActive"
    route = next(r for r in controller.core.proxy_config("cluster-2").routes if r.name == "httpbin")
    assert route.policy == "ActiveActive"
    assert len(route.tiers) == 1
    assert sorted(g.cluster for g in route.tiers[0]) == ["cluster-1", "cluster-2", "cluster-3"]
    assert [a.user for a in await controller.audit() if a.kind == "GlobalTrafficPolicy"][-1] == "tester"


async def test_inline_validation_blocks_apply(controller):
    app = MeshApp(controller)
    notes = NotifyLog()
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await pilot.press("4")
        editor = app.screen.query_one(PolicyEditor)
        await wait_for(pilot, lambda: editor.context is not None and len(editor.query(TargetRow)) == 2, what="editor loaded")
        editor.query_one("#lb-type", Select).value = "Locality"  # two targets: invalid for Locality
        await pilot.pause()
        errors = str(editor.query_one("#policy-errors").render())
        assert "Locality allows at most one target" in errors
        assert editor.query_one("#policy-apply").disabled

        row = editor.query(TargetRow).first()
        row.query_one(Checkbox).value = False  # one target left: Locality pinned to it
        weight = editor.query(TargetRow).last().query_one(Input)
        weight.value = "-5"
        await pilot.pause()
        assert "must be 0 or more" in str(editor.query_one("#policy-errors").render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert any(n.startswith("weight of default/default/default/cluster-3: must be 0 or more") for n in notes)

        weight.value = ""
        await pilot.pause()
        assert str(editor.query_one("#policy-errors").render()).strip() == ""
        assert "cluster-3" in str(editor.query_one("#policy-share").render()) and "100.0%" in str(editor.query_one("#policy-share").render())
    stored = await controller.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin")
    assert stored["spec"]["lbType"] == "FailOver"  # nothing invalid reached the controller
