"""Live data: the watch stream survives errors, tap and top fill from their streams on a fixed
tick, golden metrics reach the tables, production clusters stand out."""
from __future__ import annotations

import time

from textual.widgets import Input

from controller.embedded import EmbeddedController
from meshtui.tui.app import MeshApp
from meshtui.tui.screens.service_detail import ServiceDetailScreen
from meshtui.tui.screens.tap import TapScreen
from meshtui.tui.widgets.tables import LiveTable

from .conftest import SIZE, table_rows, wait_for, wait_rows
from .recorded import REQUESTS, RecordedController


class FlakyWatch(EmbeddedController):
    """A real controller whose first watch streams break after the initial list, like an attach
    connection that drops."""

    failures = 2

    async def watch(self, kinds=None, *, cluster=None, since=None):
        async for event in super().watch(kinds, cluster=cluster, since=since):
            yield event
            if event.type == "BOOKMARK" and self.failures:
                self.failures -= 1
                raise ConnectionResetError("connection to controller lost")


async def test_watch_error_shows_reconnecting_and_recovers(tmp_path):
    inner = await EmbeddedController.open(tmp_path / "state")
    controller = FlakyWatch(inner.state_dir, inner.core, inner.settings)
    await controller.apply("apiVersion: flomesh.io/v1alpha1\nkind: Cluster\nmetadata: {name: east}\nspec: {}\n")
    app = MeshApp(controller)
    states: list[str] = []
    original = app.set_connection_state
    app.set_connection_state = lambda s: (states.append(s), original(s))  # record what the header was told
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connection_state == "live" and controller.failures == 0, timeout=8, what="recovered")
        assert any(s.startswith("reconnecting… (ConnectionResetError") for s in states)
        await controller.delete("cluster", "east")  # live changes after the reconnects reach the table
        await controller.apply("apiVersion: flomesh.io/v1alpha1\nkind: Cluster\nmetadata: {name: west}\nspec: {}\n")
        await wait_rows(pilot, lambda rows: [r[0] for r in rows] == ["west"])
        assert "● live" in str(app.screen.query_one("MeshHeader").render())
    assert states.count("live") == 3


async def test_relist_after_reconnect_drops_objects_deleted_meanwhile(tmp_path):
    from controller.interface import WatchEvent
    from meshtui.tui.live.cache import ResourceCache

    cache = ResourceCache()
    gone = {"kind": "Cluster", "metadata": {"name": "gone"}}
    kept = {"kind": "Cluster", "metadata": {"name": "kept"}}
    for e in (WatchEvent("ADDED", gone), WatchEvent("ADDED", kept), WatchEvent("BOOKMARK", {})):
        cache.apply(e)
    cache.begin_relist()
    cache.apply(WatchEvent("ADDED", kept))
    assert cache.cluster_names() == ["gone", "kept"]  # until the relist completes
    cache.apply(WatchEvent("BOOKMARK", {}))
    assert cache.cluster_names() == ["kept"] and cache.synced


async def test_tap_stream_pause_filter_and_detail(recorded: RecordedController):
    app = MeshApp(recorded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, TapScreen)
        rows = await wait_rows(pilot, lambda rows: len(rows) == REQUESTS)
        assert rows[0][:5] == ("out", "cluster-2", "httpbin.httpbin@cluster-1", "GET", "/get/0")
        assert rows[0][5:7] == ("200", "3.0ms") and rows[7][5] == "503 upstream reset"
        table = screen.query_one("#main", LiveTable)
        assert table.cursor_row == REQUESTS - 1  # follows the stream
        assert "id req-011" in str(screen.query_one("#tap-detail").render())

        await pilot.press("space")
        assert screen.paused and "paused" in str(screen.query_one("#tap-status").render())
        screen.buffer.clear()  # while paused the table keeps what it shows
        await pilot.pause(0.3)
        assert len(table_rows(app)) == REQUESTS
        await pilot.press("space")
        await wait_rows(pilot, lambda rows: rows == [])

        await pilot.press("f")
        await pilot.press(*"cluster-3")  # the cluster filter: restarts the stream with it
        await pilot.press("enter")
        rows = await wait_rows(pilot, lambda rows: len(rows) == REQUESTS // 2)
        assert {r[2] for r in rows} == {"httpbin.httpbin@cluster-3"}
        assert screen.tap_filter.cluster == "cluster-3"


async def test_top_aggregates_by_route(recorded: RecordedController):
    app = MeshApp(recorded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        rows = await wait_rows(pilot, lambda rows: sum(int(r[4]) for r in rows) == REQUESTS)
        by_route = {(r[1], r[3]): r for r in rows}
        # paths /get/0../get/2 to two clusters: six routes of two requests each
        assert len(rows) == 6 and all(r[4] == "2" for r in rows)
        failing = by_route[("httpbin.httpbin@cluster-3", "/get/1")]  # request 7 failed
        assert failing[8] == "50.00%"


async def test_golden_metrics_and_drill_down_live_requests(recorded: RecordedController):
    app = MeshApp(recorded)
    async with app.run_test(size=SIZE) as pilot:
        rows = await wait_rows(pilot, lambda rows: len(rows) == 3 and rows[1][6] != "-")
        assert rows[1][:1] + rows[1][6:9] == ("cluster-2", "98.00%", "10.0", "14ms")
        await pilot.press("2")
        table = app.screen.query_one("#main", LiveTable)
        await wait_for(pilot, lambda: "cluster-2/httpbin/httpbin" in table.rows, what="services")
        row = table.get_row("cluster-2/httpbin/httpbin")
        assert str(row[7]) == "98.00%" and str(row[8]) in ("10.0", "14.0", "12.0")  # the recorded frames' RPS
        table.move_cursor(row=table.get_row_index("cluster-2/httpbin/httpbin"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ServiceDetailScreen), what="drill-down")
        edges = await wait_rows(pilot, lambda rows: len(rows) == 2 and rows[0][2] != "-", selector="#edges")
        assert edges[1][:3] == ("cluster-2", "cluster-3", "96.00%")
        live = await wait_rows(pilot, lambda rows: len(rows) == REQUESTS)
        assert all("httpbin.httpbin" in r[2] for r in live)


async def test_production_cluster_rows_stand_out(controller):
    await controller.apply("apiVersion: flomesh.io/v1alpha1\nkind: Cluster\nmetadata: {name: cluster-3, labels: {meshtui.io/production: 'true'}}\nspec: {}\n")
    await controller.apply("apiVersion: flomesh.io/v1alpha1\nkind: Cluster\nmetadata: {name: cluster-1}\nspec: {production: true}\n")
    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        table = app.screen.query_one("#main", LiveTable)
        await wait_for(pilot, lambda: table.row_count == 9, what="services")
        accent = app.accent_style
        assert accent == "bold #ff9f43"  # meshtui-dark's production-accent
        styles = {key.value: {str(c.style) for c in table.get_row(key)} for key in table.rows}
        for key, cell_styles in styles.items():
            expected = {accent} if key.split("/")[0] in ("cluster-1", "cluster-3") else {""}
            assert cell_styles == expected, key
        app.theme = "meshtui-light"  # the accent follows the theme, redrawn on the next tick
        await wait_for(pilot, lambda: str(table.get_row("cluster-1/httpbin/httpbin")[0].style) == "bold #bc4c00", what="restyled")


async def test_resource_ages_follow_the_clock(controller):
    now = {"t": time.time()}
    app = MeshApp(controller)
    app.clock = lambda: now["t"]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.cache.synced, what="watch synced")
        await pilot.press("colon")
        app.screen.query_one("#command-input", Input).value = "raw svc"
        await pilot.press("enter")
        before = await wait_rows(pilot, lambda rows: len(rows) == 4)
        assert all(r[-1].endswith("s") for r in before)  # created seconds ago
        now["t"] += 3 * 3600
        after = await wait_rows(pilot, lambda rows: all(r[-1] == "3h" for r in rows))
        assert [r[:-1] for r in after] == [r[:-1] for r in before]
