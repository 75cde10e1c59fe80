"""Exports view writes and ctrl-d deletes, checked through the controller."""
from __future__ import annotations

from textual.widgets import Input

from controller.errors import NotFound
from meshtui.tui.app import MeshApp
from meshtui.tui.screens.confirm import ConfirmScreen
from meshtui.tui.screens.export_form import ExportFormScreen
from meshtui.tui.widgets.tables import LiveTable

from .conftest import SIZE, wait_for, wait_rows

EXTRA_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  ports: [{port: 9080, protocol: TCP}]
"""


async def select_row(pilot, key: str) -> None:
    table = pilot.app.screen.query_one("#main", LiveTable)
    await wait_for(pilot, lambda: key in table.rows, what=f"row {key}")
    table.move_cursor(row=table.get_row_index(key))
    await pilot.pause()


async def test_export_a_service_and_its_import_appears(controller):
    await controller.apply(EXTRA_SERVICE, cluster="cluster-3")
    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await select_row(pilot, "cluster-3/shop/ratings")
        await pilot.press("x")
        await wait_rows(pilot, lambda rows: any(r[2] == "ratings" and r[3] == "yes" and "cluster-1" in r[9] for r in rows))
    for consumer in ("cluster-1", "cluster-2"):
        imp = await controller.get("svcimp", "ratings", cluster=consumer, namespace="shop")
        ep = imp["spec"]["ports"][0]["endpoints"][0]
        assert ep["clusterKey"] == "default/default/default/cluster-3" and ep["target"]["path"] == "/cluster-3/ratings"
    assert await controller.list("svcimp", cluster="cluster-3", namespace="shop") == []


async def test_unexport_asks_first_and_edit_audience(controller):
    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await select_row(pilot, "cluster-1/httpbin/httpbin-cluster-1")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("escape")  # cancel keeps the export
        await pilot.pause()
        assert await controller.get("svcexp", "httpbin-cluster-1", cluster="cluster-1", namespace="httpbin")

        await pilot.press("r")  # rules & audience: only cluster-2 may import
        await wait_for(pilot, lambda: isinstance(app.screen, ExportFormScreen), what="export form")
        form = app.screen
        form.query_one("#audience").select("default/default/default/cluster-2")
        form.query_one(".path", Input).value = "/c1/mirror"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, ExportFormScreen), what="form closed")
        await wait_rows(pilot, lambda rows: any(r[2] == "httpbin-cluster-1" and r[4] == "cluster-2" for r in rows))

        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("y")
        await wait_rows(pilot, lambda rows: any(r[2] == "httpbin-cluster-1" and r[3] == "-" for r in rows))
    assert await controller.list("svcimp", namespace="httpbin", cluster="cluster-3") != []
    names = {o["metadata"]["name"] for o in await controller.list("svcimp", namespace="httpbin")}
    assert "httpbin-cluster-1" not in names


async def test_delete_needs_confirmation(controller):
    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await select_row(pilot, "cluster-2/httpbin/httpbin")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        assert "GlobalTrafficPolicy httpbin/httpbin @cluster-2" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("enter")  # the focused button is Cancel
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert await controller.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin")

        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.click("#confirm")
        await wait_rows(pilot, lambda rows: rows == [])
    try:
        await controller.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin")
    except NotFound:
        pass
    else:
        raise AssertionError("the policy survived a confirmed delete")
    assert [a.action for a in await controller.audit()][-1] == "delete"
