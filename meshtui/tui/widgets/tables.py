"""A DataTable updated by diff: cells that changed are updated in place, rows are added or
removed only when they really appear or go, and the table is re-sorted only when the order of
its rows changed. Changed cells of rows far outside the viewport wait until they scroll into
view, so a 2,000-row table whose metrics all move every second costs what its visible rows cost.
Callers wrap `sync` in `app.batch_update()`."""
from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable

VIEW_MARGIN = 20  # rows above and below the viewport kept current
BULK_REMOVE = 50  # removing more rows than this (or a quarter of them) at once rebuilds the table


class Cell:
    """One line of styled text for a DataTable cell. Hand-written because the table re-renders
    every visible cell after any update, and rich's Text (wrapping, justification, spans) costs
    several times this one-segment renderable per cell."""

    __slots__ = ("plain", "style", "right")

    def __init__(self, plain: str, style: str = "", right: bool = False) -> None:
        self.plain, self.style, self.right = plain, style, right

    def __str__(self) -> str:
        return self.plain

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = cell_len(self.plain)
        return Measurement(width, width)

    def __rich_console__(self, console: Console, options: ConsoleOptions):
        width = options.max_width
        text = self.plain
        size = cell_len(text)
        if size > width:
            text = set_cell_size(text, max(0, width - 1)) + "…" if width else ""
        elif size < width:
            text = " " * (width - size) + text if self.right else text + " " * (width - size)
        yield Segment(text, console.get_style(self.style) if self.style else None)


@dataclass(frozen=True, slots=True)
class Col:
    key: str
    label: str
    right: bool = False  # numbers are right-aligned


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    cells: tuple[str, ...]
    accent: bool = False  # drawn in the table's accent style: a production cluster's row, a failed request


class LiveTable(DataTable):
    def __init__(self, *, follow: bool = False, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.follow = follow  # keep the cursor on the newest row while it is on the last one
        self._cols: tuple[Col, ...] = ()
        self._shown: dict[str, tuple[tuple[str, ...], str]] = {}  # what each row displays
        self._pending: dict[str, tuple[tuple[str, ...], str]] = {}  # newer content of rows out of view
        self._order: list[str] = []

    def set_columns(self, cols: list[Col]) -> None:
        if tuple(cols) == self._cols:
            return
        self.clear(columns=True)
        for c in cols:
            self.add_column(Text(c.label, justify="right" if c.right else "left"), key=c.key)
        self._cols, self._shown, self._pending, self._order = tuple(cols), {}, {}, []

    def _cell(self, value: str, col: Col, style: str) -> Cell:
        return Cell(value, style, col.right)

    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        row = min(max(self.cursor_row, 0), self.row_count - 1)
        return self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value

    def _in_view(self) -> range:
        top = int(self.scroll_y)
        return range(max(0, top - VIEW_MARGIN), top + self.size.height + VIEW_MARGIN)

    def _show(self, key: str, cells: tuple[str, ...], style: str) -> None:
        old_cells, old_style = self._shown[key]
        for v, old, c in zip(cells, old_cells, self._cols):
            if v != old or style != old_style:
                # Only a wider cell resizes its column: DataTable re-measures the whole column
                # when a cell narrows, which is quadratic under live updates.
                grow = cell_len(v) > self.columns[c.key].content_width
                self.update_cell(key, c.key, self._cell(v, c, style), update_width=grow)
        self._shown[key] = (cells, style)

    def sync(self, rows: list[Row], accent_style: str = "") -> None:
        selected, index = self.selected_key(), self.cursor_row
        following = self.follow and (self.row_count == 0 or self.cursor_row >= self.row_count - 1)
        wanted: dict[str, Row] = {}
        for r in rows:
            wanted.setdefault(r.key, r)
        removed = [k for k in self._order if k not in wanted]
        if len(removed) > BULK_REMOVE or len(removed) > len(self._order) // 4:
            # DataTable.remove_row re-indexes every row: many at once is cheaper as a rebuild.
            self.clear()
            self._shown, self._pending, self._order = {}, {}, []
        else:
            for key in removed:
                self.remove_row(key)
                del self._shown[key]
                self._pending.pop(key, None)
        order = [k for k in self._order if k in wanted]
        changed = []
        for key, r in wanted.items():
            style = accent_style if r.accent else ""
            shown = self._shown.get(key)
            if shown is None:
                self.add_row(*(self._cell(v, c, style) for v, c in zip(r.cells, self._cols)), key=key)
                self._shown[key] = (r.cells, style)
                order.append(key)
            elif shown != (r.cells, style):
                changed.append((key, r.cells, style))
            else:
                self._pending.pop(key, None)
        desired = list(wanted)
        if order != desired:
            # Rows showing identical text are interchangeable, so the text shown is a sufficient sort key.
            rank = {self._shown[k][0]: i for i, k in enumerate(desired)}
            self.sort(key=lambda values: rank.get(tuple(v.plain for v in values), 0))
        self._order = desired
        view = self._in_view()
        for key, cells, style in changed:
            if self.get_row_index(key) in view:
                self._show(key, cells, style)
                self._pending.pop(key, None)
            else:
                self._pending[key] = (cells, style)
        if following and self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)
        elif selected in wanted:
            if self.get_row_index(selected) != self.cursor_row:
                self.move_cursor(row=self.get_row_index(selected), animate=False, scroll=False)
        elif self.row_count and self.cursor_row != min(index, self.row_count - 1):  # its row went: stay where it was
            self.move_cursor(row=min(index, self.row_count - 1), animate=False, scroll=False)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._pending:
            view = self._in_view()
            for key in [k for k in self._pending if self.get_row_index(k) in view]:
                self._show(key, *self._pending.pop(key))


class DrillTable(LiveTable):
    """A LiveTable whose enter (or a click on the highlighted row) opens the row: shown in the footer."""

    BINDINGS = [Binding("enter", "select_cursor", "Drill down")]
