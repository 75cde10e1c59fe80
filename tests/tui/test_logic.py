"""The TUI's pure logic: shares, validation, commands, filters, bounded buffers, diff-updates."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from meshtui.tui.live.traffic import TapBuffer, TopTable
from meshtui.tui.logic import fmt
from meshtui.tui.logic.commands import Command, CommandError, parse_command
from meshtui.tui.logic.exports import RuleDraft, default_export_spec, validate_export_draft
from meshtui.tui.logic.filtering import RowFilter
from meshtui.tui.logic.traffic import tap_cells
from meshtui.tui.logic.policy import TargetDraft, effective_share, validate_draft
from meshtui.tui.widgets.tables import Col, LiveTable, Row
from proxy.events import TapDropped, TapEvent

KEYS = {"default/default/default/cluster-1", "default/default/default/cluster-3"}
C1, C3 = sorted(KEYS)


@pytest.mark.parametrize("lb, local_ready, targets, reachable, expected", [
    ("Locality", True, [], None, {"c2": 1.0}),
    ("Locality", False, [], None, {}),
    ("Locality", True, [("c1", None)], None, {"c1": 1.0}),  # pinned
    ("Locality", True, [("c1", None)], {"c3"}, {}),  # pinned to a cluster that does not export it
    ("FailOver", True, [("c1", None), ("c3", None)], None, {"c2": 1.0}),
    ("FailOver", False, [("c1", None), ("c3", None)], None, {"c1": 0.5, "c3": 0.5}),
    ("FailOver", False, [("c1", 3), ("c3", 1)], None, {"c1": 0.75, "c3": 0.25}),
    ("FailOver", False, [("c1", 0), ("c3", None)], None, {"c3": 1.0}),
    ("ActiveActive", True, [("c1", None), ("c3", None)], None, {"c2": 1 / 3, "c1": 1 / 3, "c3": 1 / 3}),
    ("ActiveActive", True, [("c1", 100), ("c3", 300)], None, {"c2": 0.2, "c1": 0.2, "c3": 0.6}),
    ("ActiveActive", False, [("c1", 50), ("c3", 50), ("c2", 10)], {"c1"}, {"c1": 1.0}),
])
def test_effective_share(lb, local_ready, targets, reachable, expected):
    share = effective_share(lb, "c2", local_ready, targets, reachable)
    assert share.keys() == expected.keys()
    assert all(abs(share[k] - v) < 1e-9 for k, v in expected.items())


def test_validate_policy_draft():
    spec, errors = validate_draft("ActiveActive", [TargetDraft(C1, True, "50"), TargetDraft(C3, False, "")], KEYS)
    assert errors == [] and spec == {"lbType": "ActiveActive", "targets": [{"clusterKey": C1, "weight": 50}]}
    _, errors = validate_draft("Locality", [TargetDraft(C1, True, ""), TargetDraft(C3, True, "")], KEYS)
    assert errors == ["spec: policy Locality allows at most one target (the local cluster)"]
    _, errors = validate_draft("FailOver", [TargetDraft(C1, True, "-1"), TargetDraft("x/y/z/w", True, "")], KEYS)
    assert errors == [f"weight of {C1}: must be 0 or more, got -1", "target x/y/z/w: no member cluster has this clusterKey"]
    _, errors = validate_draft("FailOver", [TargetDraft(C1, True, "1.5")], KEYS)
    assert errors == [f"weight of {C1}: '1.5' is not a whole number"]


def test_export_drafts():
    service = {"metadata": {"name": "web", "namespace": "shop", "cluster": "c1"},
               "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}, {"port": 8443}]}}
    assert default_export_spec(service) == {"serviceAccountName": "*", "rules": [
        {"portNumber": 80, "path": "/c1/web", "pathType": "Prefix"}, {"portNumber": 8443, "path": "/c1/web-8443", "pathType": "Prefix"}]}
    spec, errors = validate_export_draft([RuleDraft("80", "/x", "Exact")], "", [C3], "HashingLoadBalancer")
    assert errors == [] and spec["serviceAccountName"] == "*" and spec["targetClusters"] == [C3]
    _, errors = validate_export_draft([RuleDraft("80", "x", "Prefix"), RuleDraft("", "/", "Prefix")], "*", [], "RoundRobinLoadBalancer")
    assert errors == ["rule 2: port '' is not a number", "rule 1 path: must start with /"]
    _, errors = validate_export_draft([], "*", [], "RoundRobinLoadBalancer")
    assert errors == ["at least one rule (port and path) is needed"]


@pytest.mark.parametrize("text, expected", [
    ("svc", Command("view", view="services", kind="Service")),
    (":gtp @cluster-2", Command("view", view="policies", kind="GlobalTrafficPolicy", cluster="cluster-2")),
    ("serviceexports.flomesh.io", Command("view", view="exports", kind="ServiceExport")),
    ("ep @all", Command("view", view="resources", kind="Endpoints", cluster="")),
    ("raw svc @cluster-1", Command("view", view="resources", kind="Service", cluster="cluster-1")),
    ("topo", Command("view", view="topology")),
    ("@cluster-3", Command("cluster", cluster="cluster-3")),
    ("theme meshtui-light", Command("theme", arg="meshtui-light")),
    ("q", Command("quit")),
])
def test_parse_command(text, expected):
    assert parse_command(text, {"cluster-1", "cluster-2", "cluster-3"}) == expected


@pytest.mark.parametrize("text, message", [
    ("", "empty command"), ("svc @mars", "unknown cluster 'mars'"), ("nope", "unknown command or kind 'nope'"),
    ("svc extra", "unexpected 'extra'"), ("raw", ":raw needs a kind"),
])
def test_parse_command_errors(text, message):
    with pytest.raises(CommandError, match=message):
        parse_command(text, {"cluster-1"})


def test_row_filter():
    rows = [("cluster-1", "httpbin"), ("cluster-2", "curl"), ("cluster-3", "httpbin-cluster-3")]
    assert [r for r in rows if RowFilter.compile("HTTPBIN$").matches(r)] == [rows[0]]
    assert [r for r in rows if RowFilter.compile("!httpbin").matches(r)] == [rows[1]]
    bad = RowFilter.compile("a(")
    assert bad.error and bad.matches(("xa(y",)) and not bad.matches(("a",))
    assert RowFilter.compile("").matches(("anything",)) and not RowFilter.compile("").active


def _events(n: int, kind: str = "response_end", **kw) -> list[TapEvent]:
    return [TapEvent(f"r{i}", kind, "outbound", "c2", dst_cluster="c1", dst_namespace="ns", dst_service="svc",
                     method="GET", path=f"/{i % 4}", **kw) for i in range(n)]


_CELL_TEXT = st.text(alphabet="abAB-1 $^", max_size=6)
_PATTERN_PARTS = st.sampled_from(["a", "B", "-", "1", " ", "^", "$", ".", "\\s", "\\b", "[^a]", "a|b", "(?=b)", "(?<=a)",
                                  "\\n", "$^", "a$", "^b"])


@given(cells=st.lists(_CELL_TEXT, max_size=4).map(tuple), parts=st.lists(_PATTERN_PARTS, min_size=1, max_size=4),
       invert=st.booleans())
def test_row_filter_matches_as_a_search_in_each_cell(cells, parts, invert):
    """Searching the joined cells first (to rule rows out at once) never changes the answer."""
    body = "".join(parts)
    flt = RowFilter.compile(("!" if invert else "") + body)
    expected = any(re.search(flt.pattern.pattern, c, re.IGNORECASE) for c in cells) != invert
    assert flt.matches(cells) == expected


def test_tap_buffer_merges_events_and_stays_bounded():
    buf = TapBuffer(capacity=100, open_cap=10)
    buf.add(TapEvent("a", "request_init", "outbound", "c2", method="GET", path="/x"))
    buf.add(TapEvent("a", "response_init", "outbound", "c2", status=200, latency_ms=3.0))
    buf.add(TapEvent("a", "response_end", "outbound", "c2", status=200, latency_ms=3.0, duration_ms=5.0, bytes=10))
    rec = buf.by_id["a"]
    assert (rec.phase, rec.request.method, rec.request.path, rec.last.status, rec.last.duration_ms) == ("response_end", "GET", "/x", 200, 5.0)
    assert tap_cells(rec)[3:8] == ("GET", "/x", "200", "3.0ms", "5.0ms")
    for e in _events(10_000, "request_init"):  # never answered: the open set is bounded too
        buf.add(e)
    buf.add(TapDropped(7))
    assert len(buf.records) == 100 and len(buf.by_id) == 100 and len(buf._open) <= 10
    assert buf.dropped == 7 and buf.events == 10_003
    assert [r.id for r in buf.latest(2)] == ["r9998", "r9999"]


def test_top_table_counts_and_forgets_the_least_recent():
    top = TopTable(capacity=4)
    for e in _events(8, status=200, duration_ms=2.0):
        top.add(e)
    top.add(_events(1, status=503, duration_ms=9.0)[0])
    top.add(_events(1, "request_init")[0])  # only finished requests count
    (key, stats), *_ = top.top(10)
    assert key == ("c2", "svc.ns@c1", "GET", "/0") and stats.count == 3 and stats.failures == 1
    assert (stats.best_ms, stats.worst_ms, stats.last_ms) == (2.0, 9.0, 9.0)
    for i in range(5):
        top.add(TapEvent(f"x{i}", "response_end", "outbound", "c2", dst_service="other", dst_namespace="ns", method="GET", path=f"/o{i}"))
    assert len(top.stats) == 4 and all(k[1] == "other.ns@" for k in top.stats)


def test_formatting():
    assert fmt.pct(0.98765) == "98.77%" and fmt.pct(None) == "-"
    assert fmt.ms(3.25) == "3.2ms" and fmt.ms(42) == "42ms" and fmt.ms(1500) == "1.50s"
    assert fmt.age(59) == "59s" and fmt.age(3600 * 5 + 1) == "5h" and fmt.age(86400 * 3) == "3d"
    assert fmt.sparkline([0, 5, 10], 3) == "▁▅█" and fmt.sparkline([1, 2, 3, 4], 2) == "▆█"
    assert fmt.bar(0.5, 4) == "██░░"


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield LiveTable(id="t")


async def test_live_table_updates_cells_in_place_and_orders_rows():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(LiveTable)
        table.set_columns([Col("name", "NAME"), Col("n", "N", right=True)])
        table.sync([Row("a", ("a", "1")), Row("c", ("c", "1"))])
        keys = {k.value: k for k in table.rows}
        table.move_cursor(row=1)
        table.sync([Row("a", ("a", "2")), Row("b", ("b", "0")), Row("c", ("c", "1"), accent=True)], "bold red")
        await pilot.pause()
        assert [str(table.get_row_at(i)[0]) for i in range(3)] == ["a", "b", "c"]
        assert str(table.get_row("a")[1]) == "2" and str(table.get_row("c")[0].style) == "bold red"
        assert all(table.rows[keys[k]] for k in ("a", "c"))  # same row objects: updated in place, not re-added
        assert table.selected_key() == "c"  # the cursor stays on its row when rows are inserted above
        table.sync([Row("b", ("b", "0"))])
        assert [k.value for k in table.rows] == ["b"]


async def test_live_table_recomputes_live_cells_of_rows_in_view_only():
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(LiveTable)
        table.set_columns([Col("name", "NAME"), Col("n", "N", right=True)])
        poll = {"n": 1}
        asked: list[str] = []

        def live(key: str) -> tuple[str, ...]:
            asked.append(key)
            return (f"{key}:{poll['n']}",)

        keys = [f"r{i:03d}" for i in range(300)]
        table.sync([Row(k, (k,)) for k in keys], live=live)
        await pilot.pause()
        assert str(table.get_row("r299")[1]) == "r299:1"  # new rows get their live cells at once
        assert len(asked) == 300

        asked.clear()
        poll["n"] = 2
        table.refresh_live()  # a metrics poll: only rows in view (and a margin) are recomputed
        assert 0 < len(asked) < 60 and "r299" not in asked
        assert str(table.get_row("r000")[1]) == "r000:2" and str(table.get_row("r299")[1]) == "r299:1"

        table.sync([Row(k, (k,)) for k in keys], live=live)  # same rows: live cells are kept, not recomputed
        assert str(table.get_row("r000")[1]) == "r000:2"

        table.scroll_end(animate=False)
        await pilot.pause()
        assert str(table.get_row("r299")[1]) == "r299:2"  # brought up to date when scrolled into view
        assert str(table.get_row("r150")[1]) == "r150:1"  # never in view: never recomputed


async def test_live_table_removes_many_rows_at_once_and_keeps_the_others():
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(LiveTable)
        table.set_columns([Col("name", "NAME")])
        table.sync([Row(f"r{i:03d}", (f"r{i:03d}",)) for i in range(300)])
        kept = {k.value: k for k in table.rows if k.value.endswith("7")}
        table.move_cursor(row=table.get_row_index("r157"))
        table.sync([Row(k, (k,)) for k in kept])  # 270 of 300 rows go
        await pilot.pause()
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == list(kept)
        assert all(table.rows[kept[k]] for k in kept) and table.selected_key() == "r157"
        assert table.virtual_size.height == len(kept) + 1  # the header line and one line per row


async def test_following_table_shows_the_newest_rows_in_the_frame_after_the_update():
    """A rotating window of rows (Tap): the view is at the bottom as soon as rows are synced,
    not one frame later (that frame would show the rows at the top first)."""
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(LiveTable)
        table.follow = True
        table.set_columns([Col("id", "ID")])
        table.styles.height = 10  # as the app's stylesheet sizes its tables
        await pilot.pause()
        for start in (0, 30, 60):
            table.sync([Row(f"q{i}", (f"q{i}",)) for i in range(start, start + 30)])
            assert table.selected_key() == f"q{start + 29}"
            assert table.max_scroll_y > 0 and table.scroll_y == table.max_scroll_y
            await pilot.pause()


async def test_live_table_draws_cells_as_datatable_does():
    """LiveTable draws its one-segment cells itself; the screen must match DataTable's own drawing."""
    class Both(App):
        def compose(self) -> ComposeResult:
            yield LiveTable(id="live")
            yield DataTable(id="plain", cursor_type="row")

    app = Both()
    async with app.run_test(size=(60, 20)) as pilot:
        live, plain = app.query_one("#live", LiveTable), app.query_one("#plain", DataTable)
        cols = [Col("name", "NAME"), Col("n", "COUNT", right=True), Col("s", "STATE")]
        live.set_columns(cols)
        for c in cols:
            plain.add_column(Text(c.label, justify="right" if c.right else "left"), key=c.key)
        data = [("alpha", "1", "ok"), ("a-much-longer-name", "12345", "failed"), ("b", "7", "ok")]
        live.sync([Row(d[0], d, accent=d[2] == "failed") for d in data], "bold red")
        for d in data:
            style = "bold red" if d[2] == "failed" else ""
            plain.add_row(*(Text(v, style=style, justify="right" if c.right else "left") for v, c in zip(d, cols)), key=d[0])
        live.move_cursor(row=1)
        plain.move_cursor(row=1)
        app.set_focus(None)
        await pilot.pause()
        for table in (live, plain):
            table.styles.height = 5
        await pilot.pause()
        def drawn(table: DataTable) -> list[list[tuple[str, str]]]:
            return [[(seg.text, str(seg.style)) for seg in table.render_line(y).simplify()] for y in range(4)]

        assert drawn(live) == drawn(plain)
        assert drawn(live)[2][1] == ("a-much-longer-name", "bold #e0e0e0 on #153854")  # the accent (bold) under the cursor


def test_gateway_state_from_links_or_cluster_status():
    from meshtui.tui.logic.clusters import gateway_state

    cluster = {"metadata": {"name": "c1"}, "status": {"gateway": {"address": "127.0.11.1:4143", "up": True, "alive": False, "probeLatencyMs": 2.5}}}
    assert gateway_state(cluster, []) == (False, 2.5, 0)
    assert gateway_state({"metadata": {"name": "c1"}, "status": {"gateway": {"up": True}}}, []) == (True, None, 0)
    assert gateway_state({"metadata": {"name": "c1"}}, []) == (None, None, 0)
    links = [{"spec": {"targetCluster": "c1"}, "status": {"alive": True, "latencyMs": 1.5}},
             {"spec": {"targetCluster": "c1"}, "status": {"alive": True, "latencyMs": 4.0}},
             {"spec": {"targetCluster": "c2"}, "status": {"alive": False}}]
    assert gateway_state(cluster, links) == (True, 4.0, 2)


def test_service_views_merge_services_imports_exports_and_readiness():
    from controller.interface import WatchEvent
    from meshtui.tui.live.cache import ResourceCache
    from meshtui.tui.logic.services import service_views

    def obj(kind, name, cluster="", ns="", **body):
        md = {"name": name, **({"cluster": cluster, "namespace": ns} if cluster else {})}
        return {"kind": kind, "metadata": md, **body}

    cache = ResourceCache()
    for o in (
        obj("Cluster", "c1", spec={}), obj("Cluster", "c2", spec={}),
        obj("Service", "web", "c1", "shop", spec={"selector": {"app": "web"}, "ports": [{"port": 80}]}),
        {**obj("Workload", "web", "c1", "shop", spec={"labels": {"app": "web"}, "port": 80}, status={"readyReplicas": 0}),
         "metadata": {"name": "web", "cluster": "c1", "namespace": "shop", "annotations": {"meshtui.io/addresses": "127.0.11.20,127.0.11.21"}}},
        obj("ServiceExport", "web", "c1", "shop", spec={"targetClusters": ["default/default/default/c2"]},
            status={"conditions": [{"type": "Valid", "status": "True"}]}),
        obj("ServiceImport", "web", "c2", "shop", spec={"ports": [{"port": 80, "endpoints": [{"clusterKey": "default/default/default/c1", "target": {"host": "h", "port": 4143}}]}]}),
        obj("GlobalTrafficPolicy", "web", "c2", "shop", spec={"lbType": "FailOver"}),
    ):
        cache.apply(WatchEvent("ADDED", o))
    c1, c2 = service_views(cache)
    assert (c1.cluster, c1.local, c1.ready, c1.total, c1.exported_to, c1.export_state, c1.imported_from, c1.policy) == \
        ("c1", True, 0, 2, "c2", "Valid", (), "")
    assert (c2.cluster, c2.local, c2.total, c2.exported_to, c2.imported_from, c2.policy) == ("c2", False, 0, "-", ("c1",), "FailOver")
