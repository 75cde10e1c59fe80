"""Top: finished requests aggregated by source, destination, method and path (like `linkerd viz
top`), redrawn on a fixed 100 ms tick, busiest first."""
from __future__ import annotations

from functools import partial

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from proxy.events import TapFilter

from ..live.streams import follow_tap
from ..live.traffic import TopTable
from ..logic.traffic import TOP_COLUMNS, top_cells
from ..widgets.chrome import set_content
from ..widgets.tables import Col, LiveTable, Row
from .base import MeshScreen

SHOWN = 100


class TopScreen(MeshScreen):
    VIEW = "top"
    TICK = 0.1
    BINDINGS = [Binding("c", "clear", "Clear")]

    def __init__(self) -> None:
        super().__init__()
        self.top = TopTable()
        self.tap_state = "starting"

    def body(self) -> ComposeResult:
        yield LiveTable(id="main")
        yield Static("", id="top-status", classes="status-line")

    def data_version(self) -> tuple:
        return (self.top.version, self.app.style_version, self.tap_state)

    def on_screen_resume(self) -> None:
        self.start_stream()
        super().on_screen_resume()

    def on_screen_suspend(self) -> None:
        self.workers.cancel_group(self, "tap")

    def start_stream(self) -> None:
        flt = TapFilter(cluster=self.cluster or "", kinds=("response_end",))
        self.run_worker(partial(follow_tap, self.app.controller, flt, self.top.add, self._set_state), group="tap", exclusive=True)

    def _set_state(self, state: str) -> None:
        self.tap_state = state

    def set_cluster(self, cluster: str | None) -> None:
        changed = (cluster or None) != self.cluster
        super().set_cluster(cluster)
        if changed:
            self.top.clear()
            self.start_stream()

    def action_clear(self) -> None:
        self.top.clear()
        self.redraw()

    def draw(self) -> None:
        production = self.app.production()
        rows = [Row("|".join(key), top_cells(key, stats), key[0] in production) for key, stats in self.top.top(SHOWN)]
        table = self.query_one("#main", LiveTable)
        with self.app.batch_update():
            table.set_columns([Col(c.lower(), c, c in ("COUNT", "BEST", "WORST", "LAST", "SUCCESS")) for c in TOP_COLUMNS])
            table.sync([r for r in rows if self.row_filter.matches(r.cells)], self.app.accent_style)
        set_content(self.query_one("#top-status", Static),
                    Text(f"● {self.tap_state} · {len(self.top.stats)} routes seen · busiest {SHOWN} shown"), fixed_size=True)
