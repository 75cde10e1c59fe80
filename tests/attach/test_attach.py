"""The TUI over the API (what `meshtui attach` runs): the same resources as the controller, writes
audited under the TUI's user, and a controller restart survived: reconnecting, then live again."""
from __future__ import annotations

from controller.remote import RemoteController
from meshtui.tui.app import MeshApp
from meshtui.tui.widgets.tables import LiveTable
from tests.tui.conftest import table_rows, wait_for, wait_rows

REVIEWS = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  ports: [{port: 9080, protocol: TCP}]
"""


def header(app: MeshApp) -> str:
    return str(app.screen.query_one("MeshHeader").render())


async def test_the_tui_over_the_api_shows_and_edits_what_the_controller_holds(api):
    remote = await RemoteController.connect(api.url, api.tokens.admin)
    app = MeshApp(remote, user="alice")
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("2")
            rows = await wait_rows(pilot, lambda rows: len(rows) > 0)
            held = sorted((s["metadata"]["cluster"], s["metadata"]["namespace"], s["metadata"]["name"]) for s in await api.controller.list("svc"))
            assert sorted(r[:3] for r in rows) == held == [("cluster-1", "shop", "ratings")]

            await pilot.press("3")
            table = app.screen.query_one("#main", LiveTable)
            await wait_for(pilot, lambda: "cluster-1/shop/ratings" in table.rows, what="the ratings row")
            await pilot.press("x")
            await wait_rows(pilot, lambda rows: any(r[2] == "ratings" and r[3] == "yes" for r in rows))
    finally:
        await remote.close()
    export = await api.controller.get("svcexp", "ratings", cluster="cluster-1", namespace="shop")
    assert export["metadata"]["name"] == "ratings"
    audit = [(a.user, a.action, a.kind) for a in await api.controller.audit()]
    assert audit[-1] == ("alice", "apply", "ServiceExport")  # the API recorded the TUI's user, not the token's role


async def test_the_tui_survives_a_controller_restart(api):
    remote = await RemoteController.connect(api.url, api.tokens.admin)
    app = MeshApp(remote, user="alice")
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("2")
            await wait_for(pilot, lambda: app.connection_state == "live", what="live")
            await wait_rows(pilot, lambda rows: [r[2] for r in rows] == ["ratings"])

            await api.stop()
            await wait_for(pilot, lambda: app.connection_state.startswith("reconnecting"), what="reconnecting")
            await pilot.pause(0.1)
            assert "reconnecting" in header(app)
            # while it is away the controller changes; the TUI keeps its last view meanwhile
            await api.controller.apply(REVIEWS, cluster="cluster-1")
            assert [r[2] for r in table_rows(app)] == ["ratings"]

            await api.start()
            await wait_for(pilot, lambda: app.connection_state == "live", timeout=15, what="live again")
            await wait_rows(pilot, lambda rows: sorted(r[2] for r in rows) == ["ratings", "reviews"])
            assert "live" in header(app) and "reconnecting" not in header(app)
            # and changes made after the restart arrive live
            await api.controller.delete("svc", "ratings", cluster="cluster-1", namespace="shop")
            await wait_rows(pilot, lambda rows: [r[2] for r in rows] == ["reviews"])
    finally:
        await remote.close()
