"""Overview: one row per cluster (gateway, probe latency, exports, imports, golden metrics and
their trend), the selected cluster's trend lines, and what `check` warns about."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, Sparkline, Static

from ..logic import fmt
from ..logic.clusters import gateway_state, key_of_cluster
from ..widgets.chrome import set_content
from ..widgets.tables import Col, LiveTable, Row
from .base import TableScreen

TREND_WIDTH = 20


class OverviewScreen(TableScreen):
    VIEW = "overview"

    def body(self) -> ComposeResult:
        yield LiveTable(id="main")
        with Horizontal(id="overview-bottom"):
            with Vertical(id="overview-trends"):
                yield Label("", id="trend-title")
                yield Sparkline([], id="rps-trend")
                yield Label("success rate", classes="hint")
                yield Sparkline([], id="sr-trend")
            yield Static("", id="warnings")

    def data_version(self) -> tuple:
        return (*super().data_version(), self.app.golden.generation, self.app.checks_version, self.app.metrics_error)

    def build(self) -> tuple[list[Col], list[Row]]:
        app = self.app
        cols = [Col("cluster", "CLUSTER"), Col("locality", "REGION/ZONE/GROUP"), Col("gateway", "GATEWAY"), Col("probe", "PROBE", True),
                Col("exports", "EXPORTS", True), Col("imports", "IMPORTS", True), Col("sr", "SUCCESS", True),
                Col("rps", "RPS", True), Col("p99", "P99", True), Col("trend", "RPS TREND")]
        links = app.cache.list("Link")
        production = app.production()
        rows = []
        for c in app.cache.list("Cluster"):
            name = c["metadata"]["name"]
            if self.cluster and name != self.cluster:
                continue
            alive, latency, probes = gateway_state(c, links)
            gateway = "-" if alive is None else ("alive" if alive else "DOWN") + (f" ({probes} probes)" if probes else "")
            g = app.golden.clusters.get(name)
            self.objects[name] = c
            rows.append(Row(name, (
                name, key_of_cluster(c).rsplit("/", 1)[0], gateway, fmt.ms(latency),
                str(app.cache.count("ServiceExport", name)), str(app.cache.count("ServiceImport", name)),
                fmt.pct(g.success_rate if g else None), fmt.rps(g.rps if g else None), fmt.ms(g.p99_ms if g else None),
                fmt.sparkline(app.golden.rps_history.get(name, ()), TREND_WIDTH),
            ), accent=name in production))
        return cols, rows

    def draw(self) -> None:
        super().draw()
        self.draw_trends()
        self.draw_warnings()

    def draw_trends(self) -> None:
        name = self.table.selected_key()
        golden = self.app.golden
        set_content(self.query_one("#trend-title", Label), f"requests/s of {name}" if name else "requests/s")
        self.query_one("#rps-trend", Sparkline).data = list(golden.rps_history.get(name, ())) if name else []
        self.query_one("#sr-trend", Sparkline).data = list(golden.sr_history.get(name, ())) if name else []

    def draw_warnings(self) -> None:
        app = self.app
        bad = [c for c in app.checks if not c.ok or c.warning]
        lines = []
        if app.metrics_error:
            lines.append(f"‼ {app.metrics_error}")
        elif not app.golden.clusters:
            lines.append("· no traffic metrics yet")
        for c in bad:
            mark = "‼" if c.ok else "✘"
            lines.append(f"{mark} {c.name}: {c.message}" + (f"\n    hint: {c.hint}" if c.hint else ""))
        if not bad and app.checks:
            lines.append(f"✔ all {len(app.checks)} checks pass")
        set_content(self.query_one("#warnings", Static), Text("\n".join(lines)), fixed_size=True)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.draw_trends()
