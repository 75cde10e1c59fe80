"""Tap: the live request stream (like `linkerd viz tap`), filtered by cluster, namespace, service,
method and path; space pauses and resumes; the highlighted request is shown in full below."""
from __future__ import annotations

from functools import partial

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from proxy.events import TapFilter

from ..live.streams import follow_tap
from ..live.traffic import TapBuffer
from ..logic.traffic import TAP_COLUMNS, failed, tap_cells, tap_detail
from ..widgets.chrome import set_content
from ..widgets.tables import Col, LiveTable, Row
from .base import MeshScreen

STREAMING_ROWS = 50  # newest requests shown while streaming (a screenful, cheap to redraw 10 times a second)
PAUSED_ROWS = 1000  # requests to scroll through once paused
FILTER_FIELDS = (("cluster", "cluster"), ("namespace", "namespace"), ("service", "service"), ("method", "method"),
                 ("path_prefix", "path prefix"))
RESTART_DELAY = 0.3  # seconds of quiet typing before the stream is restarted with new filters


class TapScreen(MeshScreen):
    VIEW = "tap"
    TICK = 0.1
    BINDINGS = [
        Binding("space", "pause", "Pause/resume"),
        Binding("c", "clear", "Clear"),
        Binding("f", "focus_filters", "Filters"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.buffer = TapBuffer(capacity=2000)
        self.paused = False
        self.tap_state = "starting"
        self.tap_filter = TapFilter()
        self._restart: Timer | None = None

    def body(self) -> ComposeResult:
        with Horizontal(id="tap-filters"):
            for field, label in FILTER_FIELDS:
                yield Input(placeholder=label, id=f"tap-{field.replace('_', '-')}")
        yield LiveTable(id="main", follow=True)
        yield Static("", id="tap-detail")
        yield Static("", id="tap-status", classes="status-line")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#main").focus()

    def data_version(self) -> tuple:
        return (self.buffer.version if not self.paused else -1, self.paused, self.app.style_version, self.tap_state)

    # the stream ---------------------------------------------------------------------------
    def set_cluster(self, cluster: str | None) -> None:
        self.query_one("#tap-cluster", Input).value = cluster or ""
        super().set_cluster(cluster)

    def on_screen_resume(self) -> None:
        self.start_stream()
        super().on_screen_resume()

    def on_screen_suspend(self) -> None:
        self.workers.cancel_group(self, "tap")

    def current_filter(self) -> TapFilter:
        values = {field: self.query_one(f"#tap-{field.replace('_', '-')}", Input).value.strip() for field, _ in FILTER_FIELDS}
        return TapFilter(**values)

    def start_stream(self) -> None:
        self.tap_filter = self.current_filter()
        self.run_worker(partial(follow_tap, self.app.controller, self.tap_filter, self.buffer.add, self._set_state), group="tap", exclusive=True)

    def _set_state(self, state: str) -> None:
        self.tap_state = state

    @on(Input.Changed, "#tap-filters Input")
    def _filters_changed(self) -> None:
        if self._restart is not None:
            self._restart.stop()
        self._restart = self.set_timer(RESTART_DELAY, self._apply_filters)

    @on(Input.Submitted, "#tap-filters Input")
    def _filters_submitted(self) -> None:
        self._apply_filters()
        self.focus_main()

    def _apply_filters(self) -> None:
        if self.current_filter() != self.tap_filter:
            self.buffer.clear()
            self.start_stream()

    # keys ---------------------------------------------------------------------------------
    def action_pause(self) -> None:
        if not self.paused:
            self.sync_rows(PAUSED_ROWS)  # freeze with the history kept, to scroll and inspect
        self.paused = not self.paused
        self.redraw()

    def action_clear(self) -> None:
        self.buffer.clear()
        self.redraw()

    def action_focus_filters(self) -> None:
        self.query_one("#tap-cluster", Input).focus()

    # drawing ------------------------------------------------------------------------------
    def sync_rows(self, count: int) -> None:
        table = self.query_one("#main", LiveTable)
        rows = [Row(r.id, tap_cells(r), failed(r)) for r in self.buffer.latest(count)]
        table.set_columns([Col(c.lower(), c, c in ("STATUS", "LATENCY", "DURATION", "BYTES")) for c in TAP_COLUMNS])
        table.sync([r for r in rows if self.row_filter.matches(r.cells)], self.app.failure_style)

    def draw(self) -> None:
        with self.app.batch_update():
            if not self.paused:
                self.sync_rows(STREAMING_ROWS)
            self.draw_detail()
            state = "⏸ paused (space resumes)" if self.paused else f"● {self.tap_state}"
            set_content(self.query_one("#tap-status", Static), Text(
                f"{state} · {self.buffer.events} events · {len(self.buffer.records)} requests kept · {self.buffer.dropped} dropped"),
                fixed_size=True)

    def draw_detail(self) -> None:
        key = self.query_one("#main", LiveTable).selected_key()
        rec = self.buffer.by_id.get(key) if key else None
        set_content(self.query_one("#tap-detail", Static), Text(tap_detail(rec) if rec else "no request selected"), fixed_size=True)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.draw_detail()
