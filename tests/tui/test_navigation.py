"""k9s habits: `:` command mode (kinds, aliases, @cluster), `/` filters, `?` help, d/y/e."""
from __future__ import annotations

from textual import events
from textual.keys import _character_to_key
from textual.widgets import Input, TextArea

from meshtui.tui.app import MeshApp
from meshtui.tui.screens.editor import EditorScreen
from meshtui.tui.screens.help import HelpScreen
from meshtui.tui.screens.policies import PoliciesScreen
from meshtui.tui.screens.resources import ResourcesScreen
from meshtui.tui.screens.service_detail import ServiceDetailScreen
from meshtui.tui.screens.services import ServicesScreen
from meshtui.tui.screens.text_view import TextViewScreen
from meshtui.tui.widgets.tables import LiveTable

from .conftest import SIZE, column_labels, NotifyLog, table_rows, wait_for, wait_rows


async def command(pilot, text: str, *, typed: bool = False) -> None:
    """`:text` then enter; typed key by key, or (faster) set as the command line's value."""
    await pilot.press("colon")
    if typed:
        await pilot.press(*text)
    else:
        pilot.app.screen.query_one("#command-input", Input).value = text
    await pilot.press("enter")
    await pilot.pause()


async def test_command_mode_reaches_kinds_views_and_clusters(controller):
    app = MeshApp(controller)
    notes = NotifyLog()
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await wait_for(pilot, lambda: app.cache.synced, what="watch synced")
        await command(pilot, "gtp @cluster-2", typed=True)
        assert isinstance(app.screen, PoliciesScreen) and app.screen.cluster == "cluster-2"
        rows = await wait_rows(pilot, lambda rows: len(rows) == 1)
        assert rows[0][:3] == ("httpbin", "httpbin", "FailOver")  # no CLUSTER column: one cluster selected
        assert column_labels(app)[0] == "NAMESPACE"

        await command(pilot, "serviceimports")  # a kind without a richer view: the generic table
        assert isinstance(app.screen, ResourcesScreen) and app.screen.kind == "ServiceImport"
        rows = await wait_rows(pilot, lambda rows: len(rows) == 7)
        assert column_labels(app)[:3] == ["CLUSTER", "NAMESPACE", "NAME"]
        assert ("cluster-2", "httpbin", "httpbin") == rows[[r[:3] for r in rows].index(("cluster-2", "httpbin", "httpbin"))][:3]

        await command(pilot, "@cluster-1")  # only the cluster of the current view
        rows = await wait_rows(pilot, lambda rows: len(rows) == 2)
        assert {r[1] for r in rows} == {"httpbin", "httpbin-cluster-3"}

        await command(pilot, "raw svc @all")  # the generic table even for a kind with a richer view
        assert isinstance(app.screen, ResourcesScreen) and app.screen.kind == "Service"
        rows = await wait_rows(pilot, lambda rows: len(rows) == 4)
        assert column_labels(app)[0] == "CLUSTER" and {r[0] for r in rows} == {"cluster-1", "cluster-3"}

        await command(pilot, "svc")
        assert isinstance(app.screen, ServicesScreen)
        await command(pilot, "bogus @nowhere")
        assert any("unknown cluster 'nowhere'" in n for n in notes)
        await command(pilot, "bogus")
        assert any("unknown command or kind 'bogus'" in n for n in notes)
        assert isinstance(app.screen, ServicesScreen)


async def test_filter_regex_and_inversion(controller):
    app = MeshApp(controller)
    notes = NotifyLog()
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await pilot.press("2")
        await wait_rows(pilot, lambda rows: len(rows) == 9)
        await pilot.press("slash", *"^httpbin-cluster-3$")
        rows = await wait_rows(pilot, lambda rows: len(rows) < 9)  # live while typing
        assert {r[2] for r in rows} == {"httpbin-cluster-3"} and len(rows) == 3
        await pilot.press("enter")
        assert "/^httpbin-cluster-3$" in str(app.screen.query_one("MeshHeader").render())

        await pilot.press("slash")
        app.screen.query_one("#command-input", Input).value = "!^cluster-[12]$"  # no cell is exactly cluster-1 or cluster-2
        rows = await wait_rows(pilot, lambda rows: len(rows) == 1)
        assert rows[0][:3] == ("cluster-3", "httpbin", "httpbin-cluster-3")
        await pilot.press("escape")  # esc in the bar drops the filter
        await wait_rows(pilot, lambda rows: len(rows) == 9)

        await pilot.press("slash")
        app.screen.query_one("#command-input", Input).value = "[unclosed"
        await pilot.press("enter")
        await wait_rows(pilot, lambda rows: rows == [])
        assert any("not a regex" in n for n in notes)
        await pilot.press("escape")  # esc on the table clears the filter too
        await wait_rows(pilot, lambda rows: len(rows) == 9)


async def test_help_describe_yaml_and_drill_down(controller):
    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        table = app.screen.query_one("#main", LiveTable)
        await wait_for(pilot, lambda: "cluster-2/httpbin/httpbin" in table.rows, what="services")
        table.move_cursor(row=table.get_row_index("cluster-2/httpbin/httpbin"))

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {r[1] for r in table_rows(app, "#help-keys")}
        assert {"Describe", "YAML", "Edit", "Delete", "Drill down", "Command", "Filter", "Help"} <= keys
        await pilot.press("escape")

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, TextViewScreen), what="describe")
        text = app.screen.query_one(TextArea).text
        assert "Kind:         ServiceImport" in text and "default/default/default/cluster-1" in text
        await pilot.press("escape")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, TextViewScreen), what="yaml")
        assert "kind: ServiceImport" in app.screen.query_one(TextArea).text
        await pilot.press("escape")

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ServiceDetailScreen), what="drill-down")
        edges = await wait_rows(pilot, lambda rows: len(rows) == 2, selector="#edges")
        assert [r[:2] for r in edges] == [("cluster-2", "cluster-1"), ("cluster-2", "cluster-3")]
        endpoints = await wait_rows(pilot, lambda rows: len(rows) == 2, selector="#endpoints")
        assert {(r[0], r[1], r[2]) for r in endpoints} == {
            ("127.0.11.1:4143/cluster-1/httpbin-mesh", "cluster-1", "gateway"),
            ("127.0.13.1:4143/cluster-3/httpbin-mesh", "cluster-3", "gateway")}
        await pilot.press("escape")
        assert isinstance(app.screen, ServicesScreen)


async def test_edit_yaml_validates_before_apply(controller):
    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_rows(pilot, lambda rows: len(rows) == 1)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen), what="editor")
        area = app.screen.query_one(TextArea)
        original = area.text
        area.text = original.replace("lbType: FailOver", "lbType: Sideways")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EditorScreen)  # refused: stays open with the message inline
        error = str(app.screen.query_one("#editor-error").render())
        assert "spec.lbType" in error and "Sideways" not in (await controller.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin"))["spec"]["lbType"]

        area.text = "kind: [unclosed"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "YAML: line 1" in str(app.screen.query_one("#editor-error").render())

        area.text = original.replace("lbType: FailOver", "lbType: ActiveActive")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, EditorScreen), what="editor closed")
        await wait_rows(pilot, lambda rows: rows and rows[0][3] == "ActiveActive")
    assert (await controller.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin"))["spec"]["lbType"] == "ActiveActive"


async def test_mouse_and_command_palette(controller):
    from meshtui.tui.screens.exports import ExportsScreen
    from meshtui.tui.screens.topology import TopologyScreen

    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(pilot, lambda rows: len(rows) == 3)
        nav = str(app.screen.query_one("MeshHeader").render()).splitlines()[1]
        await pilot.click("MeshHeader", offset=(1 + nav.index("3 Exports") + 2, 1))  # the views in the header
        await wait_for(pilot, lambda: isinstance(app.screen, ExportsScreen), what="exports by click")
        table = app.screen.query_one("#main", LiveTable)
        await wait_for(pilot, lambda: table.row_count == 4, what="exports")
        await pilot.click("#main", offset=(3, 3))  # header line, then rows 0, 1, 2
        assert table.cursor_row == 2
        keys = str(app.screen.query_one("#keys").render())
        await pilot.click("#keys", offset=(1 + keys.index("y YAML") + 2, 0))  # the keys in the key bar
        await wait_for(pilot, lambda: isinstance(app.screen, TextViewScreen), what="yaml by click")
        assert "name: httpbin\n" in app.screen.query_one(TextArea).text and "cluster: cluster-3" in app.screen.query_one(TextArea).text
        await pilot.press("escape")

        await pilot.press("ctrl+p", *"topology")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TopologyScreen), what="topology from the palette")


def burst(app: MeshApp, text: str) -> None:
    """Post every key of `text` ("\\r" is enter, "\\x7f" backspace) to the app at once, as a terminal
    delivers `tmux send-keys ':svc' Enter` in one read: no key waits for the previous one's effect."""
    special = {"\r": "enter", "\x7f": "backspace"}
    for ch in text:
        app.post_message(events.Key(special[ch], None) if ch in special else events.Key(_character_to_key(ch), ch))


async def test_keys_in_one_burst_reach_the_command_line(controller):
    app = MeshApp(controller)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.cache.synced, what="watch synced")
        burst(app, ":svc\r")
        await wait_for(pilot, lambda: isinstance(app.screen, ServicesScreen), what="the Services view")
        assert not app.screen.query_one("#command-bar").display
        await wait_for(pilot, lambda: isinstance(app.screen.focused, LiveTable), what="the table focused")

        # keys after enter go to the view the command opened, and a typo is corrected in order
        burst(app, ":gtq\x7fp @cluster-2\r/http\r")
        await wait_for(pilot, lambda: isinstance(app.screen, PoliciesScreen) and app.screen.row_filter.text == "http",
                       what="the Policies view, filtered")
        assert app.screen.cluster == "cluster-2"
        assert not app.screen.query_one("#command-bar").display and isinstance(app.screen.focused, LiveTable)

        app.post_message(events.Paste(":svc @cluster-1\n"))  # a bracketed paste of a command line
        await wait_for(pilot, lambda: isinstance(app.screen, ServicesScreen) and app.screen.cluster == "cluster-1",
                       what="the pasted command")

        burst(app, ":q\r")
        await wait_for(pilot, lambda: app.return_code == 0, what="the app to quit")
