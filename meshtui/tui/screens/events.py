"""Events: the audit log — who changed what, when — newest first, polled while shown."""
from __future__ import annotations

from textual.binding import Binding

from controller.interface import AuditEntry

from ..logic import fmt
from ..widgets.tables import Col, LiveTable, Row
from .base import MeshScreen

POLL_EVERY = 2.0
KEEP = 500


class EventsScreen(MeshScreen):
    VIEW = "events"
    BINDINGS = [Binding("r", "reload", "Reload")]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[AuditEntry] = []
        self.version = 0

    def body(self):
        yield LiveTable(id="main")

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(POLL_EVERY, self.poll)

    async def on_screen_resume(self) -> None:
        await self.poll()
        super().on_screen_resume()

    async def poll(self) -> None:
        if not self.is_current:
            return
        try:
            entries = await self.app.controller.audit(KEEP)
        except Exception as e:
            self.notify(f"audit log unavailable: {type(e).__name__}: {e}", severity="error", timeout=4)
            return
        if entries != self.entries:
            self.entries = entries
            self.version += 1

    async def action_reload(self) -> None:
        await self.poll()
        self.redraw()

    def data_version(self) -> tuple:
        return (self.version, self.app.style_version, int(self.app.clock()) // 10)  # ages move every 10 s

    def draw(self) -> None:
        now = self.app.clock()
        production = self.app.production()
        rows = []
        for i, e in enumerate(reversed(self.entries)):
            if self.cluster and e.cluster != self.cluster:
                continue
            cells = (fmt.age(now - e.ts), e.user, e.action, e.kind, e.cluster or "-", e.namespace or "-", e.name, e.detail)
            rows.append(Row(f"{e.ts:.6f}/{e.action}/{e.kind}/{e.cluster}/{e.namespace}/{e.name}", cells, e.cluster in production))
        table = self.query_one("#main", LiveTable)
        with self.app.batch_update():
            table.set_columns([Col("age", "AGE", True), Col("user", "USER"), Col("action", "ACTION"), Col("kind", "KIND"),
                               Col("cluster", "CLUSTER"), Col("ns", "NAMESPACE"), Col("name", "NAME"), Col("detail", "DETAIL")])
            table.sync([r for r in rows if self.row_filter.matches(r.cells)], self.app.accent_style)
