"""Services: every service of every cluster in one table — meshed backends, exported (to whom),
imported from, policy, golden metrics; enter drills into one service."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from ..logic import fmt
from ..logic.services import service_key, service_views
from ..widgets.tables import Col, DrillTable, Row
from .base import TableScreen
from .service_detail import ServiceDetailScreen


NO_METRICS = ("-",) * 5


class ServicesScreen(TableScreen):
    VIEW = "services"
    LIVE_COLUMNS = len(NO_METRICS)
    BINDINGS = [
        Binding("p", "policy", "Policy"),
    ]

    def body(self) -> ComposeResult:
        yield DrillTable(id="main")

    def __init__(self) -> None:
        super().__init__()
        self._resource_cells: tuple[tuple, list[Row], dict] = ((), [], {})

    def live_version(self) -> tuple:
        return (self.app.golden.generation,)

    def live_cells(self, key: str) -> tuple[str, ...]:
        g = self.app.golden.services.get(tuple(key.split("/", 2)))  # type: ignore[arg-type]
        return (fmt.pct(g.success_rate), fmt.rps(g.rps), fmt.ms(g.p50_ms), fmt.ms(g.p95_ms), fmt.ms(g.p99_ms)) if g else NO_METRICS

    def resource_cells(self) -> tuple[list[Row], dict]:
        """A row of the cells that come from resources per service, and the objects behind the
        rows; recomputed only when resources change, not on every metrics poll or `/` keystroke."""
        app = self.app
        stamp = (app.cache.generation, self.cluster)
        if self._resource_cells[0] != stamp:
            every = self.cluster is None
            production = app.production()
            parts, objects = [], {}
            for v in service_views(app.cache):
                if not every and v.cluster != self.cluster:
                    continue
                key = service_key(*v.key)
                obj = app.cache.get("Service", *v.key) or app.cache.get("ServiceImport", *v.key)
                if obj is not None:
                    objects[key] = obj
                exported = v.exported_to + ("" if v.export_state in ("", "Valid") else f" ({v.export_state.split(':')[0]})")
                cells = ([v.cluster] if every else []) + [
                    v.namespace, v.name, f"{v.ready}/{v.total}" if v.local else "-", exported,
                    ",".join(v.imported_from) or "-", v.policy or "-"]
                parts.append(Row(key, tuple(cells), v.cluster in production))
            self._resource_cells = (stamp, parts, objects)
        return self._resource_cells[1], self._resource_cells[2]

    def build(self) -> tuple[list[Col], list[Row]]:
        every = self.cluster is None
        cols = ([Col("cluster", "CLUSTER")] if every else []) + [
            Col("ns", "NAMESPACE"), Col("name", "NAME"), Col("meshed", "MESHED", True), Col("exported", "EXPORTED"),
            Col("imported", "IMPORTED FROM"), Col("policy", "POLICY"), Col("sr", "SUCCESS", True), Col("rps", "RPS", True),
            Col("p50", "P50", True), Col("p95", "P95", True), Col("p99", "P99", True)]
        rows, self.objects = self.resource_cells()
        return cols, list(rows)

    def _selected(self) -> tuple[str, str, str] | None:
        key = self.table.selected_key()
        if key is None:
            self.notify("nothing selected", severity="warning", timeout=2)
            return None
        cluster, namespace, name = key.split("/", 2)
        return cluster, namespace, name

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_drill()

    def action_drill(self) -> None:
        target = self._selected()
        if target:
            self.app.push_screen(ServiceDetailScreen(*target))

    async def action_policy(self) -> None:
        target = self._selected()
        if target:
            screen = await self.app.open_view("policies")
            screen.edit_policy(*target)
