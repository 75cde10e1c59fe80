"""Checks: the controller's health checks in the spirit of `linkerd check`; `r` runs them now."""
from __future__ import annotations

from textual.binding import Binding

from ..widgets.tables import Col, LiveTable, Row
from .base import MeshScreen


class ChecksScreen(MeshScreen):
    VIEW = "checks"
    BINDINGS = [Binding("r", "rerun", "Run checks")]

    def body(self):
        yield LiveTable(id="main")

    def data_version(self) -> tuple:
        return (self.app.checks_version, self.app.style_version)

    async def action_rerun(self) -> None:
        await self.app.poll_checks()
        self.redraw()

    def draw(self) -> None:
        table = self.query_one("#main", LiveTable)
        rows = []
        for c in self.app.checks:
            mark = "‼" if c.ok and c.warning else ("✔" if c.ok else "✘")
            cells = (mark, c.group, c.name, c.message, c.hint)
            rows.append(Row(f"{c.group}/{c.name}", cells, accent=not c.ok))
        with self.app.batch_update():
            table.set_columns([Col("ok", ""), Col("group", "GROUP"), Col("name", "CHECK"), Col("message", "RESULT"), Col("hint", "HINT")])
            table.sync([r for r in rows if self.row_filter.matches(r.cells)], self.app.failure_style)
