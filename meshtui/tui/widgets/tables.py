"""A DataTable updated by diff: cells that changed are updated in place, rows are added or
removed only when they really appear or go, and the table is re-sorted only when the order of
its rows changed. Changed cells of rows far outside the viewport wait until they scroll into
view, and live columns (metrics that move every poll) are recomputed only for rows in view, so a
100,000-row table whose metrics all move every second costs what its visible rows cost.
Callers wrap `sync` and `refresh_live` in `app.batch_update()`.

Rows are one line high; that lets the table find a row's line and region by its index instead of
walking every row as DataTable does after each update (see `ordered_rows`, `_y_offsets`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual._two_way_dict import TwoWayDict
from textual.widgets.data_table import Column, Row as TableRow, RowKey

VIEW_MARGIN = 20  # rows above and below the viewport kept current
MAX_STYLE_TOKENS = 256  # distinct cell styles numbered for the render cache before it starts afresh


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

    def fit(self, width: int) -> str:
        """The text cut (with an ellipsis) or padded to `width` cells, aligned."""
        text = self.plain
        size = cell_len(text)
        if size > width:
            return set_cell_size(text, max(0, width - 1)) + "…" if width else ""
        if size < width:
            return " " * (width - size) + text if self.right else text + " " * (width - size)
        return text

    def __rich_console__(self, console: Console, options: ConsoleOptions):
        yield Segment(self.fit(options.max_width), console.get_style(self.style) if self.style else None)


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


class _RowsInOrder(Sequence[TableRow]):
    """DataTable.ordered_rows without building the list of every row after each update."""

    def __init__(self, table: DataTable) -> None:
        self._table = table

    def __len__(self) -> int:
        return self._table.row_count

    def __getitem__(self, index):
        table = self._table
        if isinstance(index, slice):
            return [table.rows[table._row_locations.get_key(i)] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return table.rows[table._row_locations.get_key(index)]


class _LinesInOrder(Sequence[tuple[RowKey, int]]):
    """DataTable._y_offsets (row key and line within the row, per line) for one-line rows."""

    def __init__(self, table: DataTable) -> None:
        self._table = table

    def __len__(self) -> int:
        return self._table.row_count

    def __getitem__(self, y: int) -> tuple[RowKey, int]:
        key = self._table._row_locations.get_key(y)
        if key is None:
            raise IndexError(y)
        return key, 0

    def clear(self) -> None:
        pass


class LiveTable(DataTable):
    def __init__(self, *, follow: bool = False, **kwargs) -> None:
        self._rows_in_order = _RowsInOrder(self)  # before DataTable.__init__, which reads them
        self._columns_in_order: list[Column] | None = None
        self._lines_in_order = _LinesInOrder(self)
        super().__init__(cursor_type="row", **kwargs)
        self.follow = follow  # keep the cursor on the newest row while it is on the last one
        self._cols: tuple[Col, ...] = ()
        self._shown: dict[str, tuple[tuple[str, ...], str]] = {}  # what each row displays
        self._pending: dict[str, tuple[tuple[str, ...], str]] = {}  # newer content of rows out of view
        self._order: list[str] = []
        self._live: Callable[[str], tuple[str, ...]] | None = None  # the cells of the live columns of a row
        self._live_version = 0
        self._live_seen: dict[str, int] = {}  # row -> live version it shows
        self._style_tokens: dict[tuple[Style, Style], int] = {}  # see _body_styles

    # DataTable walks every row for these after each update; rows here are one line high.
    @property
    def ordered_rows(self) -> Sequence[TableRow]:  # type: ignore[override]
        return self._rows_in_order

    @property
    def _y_offsets(self) -> Sequence[tuple[RowKey, int]]:  # type: ignore[override]
        return self._lines_in_order

    @property
    def ordered_columns(self) -> list[Column]:  # type: ignore[override]
        """As DataTable's, built once per set of columns rather than for every line and cell drawn."""
        if self._columns_in_order is None or len(self._columns_in_order) != len(self.columns):
            self._columns_in_order = DataTable.ordered_columns.fget(self)  # type: ignore[attr-defined]
        return self._columns_in_order

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """As DataTable's, with the width of a Cell taken from its text where DataTable asks rich
        to measure each cell of each new row."""
        columns = self.ordered_columns
        others = []
        for row_key in new_rows:
            cells = self._data.get(row_key)
            if cells is None or self.rows[row_key].label is not None or self.rows[row_key].auto_height:
                others.append(row_key)
                continue
            for column in columns:
                cell = cells.get(column.key)
                if isinstance(cell, Cell):
                    column.content_width = max(column.content_width, cell_len(cell.plain))
                else:
                    others.append(row_key)
                    break
        super()._update_dimensions(others)

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False):
        """As DataTable's, through `_cell_segments` for a Cell (DataTable's own row rendering
        calls this for tables with fixed columns or row labels)."""
        cells = self._data.get(self._row_locations.get_key(row_index)) if row_index >= 0 and column_index >= 0 else None
        cell = cells.get(self._column_locations.get_key(column_index)) if cells else None
        if (not isinstance(cell, Cell) or self.fixed_rows or self.fixed_columns or width < 2 * self.cell_padding
                or self.rows[self._row_locations.get_key(row_index)].height != 1):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        return [self._cell_segments(cell, row_index, column_index, width, self._body_styles(base_style, cursor, hover))]

    def _body_styles(self, row_style: Style, cursor: bool, hover: bool) -> tuple[int, Style, Style]:
        """The style of a body cell before its own style, the one laid over it (DataTable's
        cursor colours when the CSS has priority), and a number standing for the pair in cache
        keys (hashing styles for every cell drawn cost more than drawing it)."""
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        body = row_style + component_style
        token = self._style_tokens.get((body, post_style))
        if token is None:
            if len(self._style_tokens) >= MAX_STYLE_TOKENS:
                self._style_tokens.clear()
                self._cell_render_cache.clear()  # its keys name tokens that are about to be reused
            token = self._style_tokens[(body, post_style)] = len(self._style_tokens)
        return token, body, post_style

    def _cell_segments(self, cell: Cell, row_index: int, column_index: int, width: int,
                       styles: tuple[int, Style, Style]) -> list[Segment]:
        """One Segment per Cell (two more when it has its own style) where DataTable runs rich's
        render pipeline (Styled, Padding, line splitting), and cached by the Cell itself rather
        than until the next update of any cell: after a metrics poll only the cells that changed
        are drawn anew. The styles are DataTable's: body, then the cell's own, then post, with
        the cell's coordinates as meta (for mouse clicks), which no other style carries."""
        # (the cache is DataTable's, emptied when styles change; a changed cell is a new Cell)
        token, body, post = styles
        cache_key = (cell, row_index, column_index, width, token)
        segments = self._cell_render_cache.get(cache_key)
        if segments is None:
            meta = Style.from_meta({"row": row_index, "column": column_index})
            pad = " " * self.cell_padding
            text = cell.fit(width - 2 * len(pad))
            edge = body + post + meta
            if cell.style:
                segments = [Segment(pad, edge), Segment(text, body + self.app.console.get_style(cell.style) + post + meta),
                            Segment(pad, edge)]
            else:
                segments = [Segment(pad + text + pad, edge)]
            self._cell_render_cache[cache_key] = segments
        return segments

    def _render_line_in_row(self, row_key: RowKey, line_no: int, base_style: Style, cursor_location, hover_location):
        """As DataTable's for body rows under a row cursor with no labels or fixed columns, minus
        the header style and background it looks up for every line (walking every ancestor's
        styles) but needs only in the other cases, and with the row's styles worked out once
        rather than for each of its cells."""
        if (row_key is self._header_row_key or self.cursor_type != "row" or self.fixed_columns
                or (self._labelled_row_exists and self.show_row_labels)):
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        show_cursor, show_hover = self.show_cursor, self._show_hover_cursor
        cache_key = (row_key, line_no, base_style, cursor_location, hover_location, "row", show_cursor, show_hover,
                     self._update_count, self._pseudo_class_state)
        pair = self._row_render_cache.get(cache_key)
        if pair is not None:
            return pair
        row_index = self._row_locations.get(row_key)
        if row_index is None:
            row_index = -1
        row_style = self._get_row_style(row_index, base_style)
        cursor, hover = row_index == cursor_location.row, row_index == hover_location.row
        padding = self.cell_padding
        data = self._data.get(row_key) if row_index >= 0 else None
        if data is not None and (self.fixed_rows or self.rows[row_key].height != 1):
            data = None  # DataTable's way
        styles = self._body_styles(row_style, cursor, hover)
        cells, width = [], 0
        for column_index, column in enumerate(self.ordered_columns):
            column_width = 2 * padding + (column.content_width if column.auto_width else column.width)
            width += column_width
            cell = data.get(column.key) if data is not None else None
            if isinstance(cell, Cell):
                cells.append(self._cell_segments(cell, row_index, column_index, column_width, styles))
            else:
                cells.append(self._render_cell(row_index, column_index, row_style, column_width, cursor=cursor,
                                               hover=hover)[line_no])
        extend_style, _ = self._get_styles_to_render_cell(row_index == -1, False, False, hover, cursor, show_cursor,
                                                          show_hover, False, False)
        extend_style = row_style + extend_style + Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        cells.append([Segment(" " * max(0, self.size.width - width - self._row_label_column_width), extend_style)])
        pair = ([], cells)
        self._row_render_cache[cache_key] = pair
        return pair

    def set_columns(self, cols: list[Col]) -> None:
        if tuple(cols) == self._cols:
            return
        self.clear(columns=True)
        self._columns_in_order = None
        for c in cols:
            self.add_column(Text(c.label, justify="right" if c.right else "left"), key=c.key)
        self._cols, self._shown, self._pending, self._order, self._live_seen = tuple(cols), {}, {}, [], {}

    def _cell(self, value: str, col: Col, style: str) -> Cell:
        return Cell(value, style, col.right)

    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        row = min(max(self.cursor_row, 0), self.row_count - 1)
        return self._row_locations.get_key(row).value

    def _in_view(self) -> range:
        top = int(self.scroll_y)
        return range(max(0, top - VIEW_MARGIN), min(self.row_count, top + self.size.height + VIEW_MARGIN))

    def _show(self, key: str, cells: tuple[str, ...], style: str) -> None:
        old_cells, old_style = self._shown[key]
        row = self._data[RowKey(key)]
        changed = False
        for v, old, c in zip(cells, old_cells, self._cols):
            if v != old or style != old_style:
                # Only a wider cell resizes its column: DataTable re-measures the whole column
                # when a cell narrows, which is quadratic under live updates.
                if cell_len(v) > self.columns[c.key].content_width:
                    self.update_cell(key, c.key, self._cell(v, c, style), update_width=True)
                else:  # DataTable.update_cell, minus a refresh per cell
                    row[c.key] = self._cell(v, c, style)
                    changed = True
        if changed:
            self._update_count += 1
            self.refresh()
        self._shown[key] = (cells, style)

    def sync(self, rows: list[Row], accent_style: str = "", live: Callable[[str], tuple[str, ...]] | None = None) -> None:
        """Show `rows`, in order. With `live`, a row's cells are followed by `live(row key)`:
        computed for new rows, kept for the others until `refresh_live` or a scroll updates them."""
        self._live = live
        selected, index = self.selected_key(), self.cursor_row
        following = self.follow and (self.row_count == 0 or self.cursor_row >= self.row_count - 1)
        wanted: dict[str, Row] = {}
        for r in rows:
            wanted.setdefault(r.key, r)
        removed = [k for k in self._order if k not in wanted]
        self._remove_rows(removed)
        for key in removed:
            del self._shown[key]
            self._pending.pop(key, None)
            self._live_seen.pop(key, None)
        order = [k for k in self._order if k in wanted]
        changed, added = [], []
        for key, r in wanted.items():
            style = accent_style if r.accent else ""
            shown = self._shown.get(key)
            if shown is None:
                cells = r.cells
                if live is not None:
                    cells += live(key)
                    self._live_seen[key] = self._live_version
                added.append((key, tuple(self._cell(v, c, style) for v, c in zip(cells, self._cols))))
                self._shown[key] = (cells, style)
                order.append(key)
            elif shown[0][:len(r.cells)] != r.cells or shown[1] != style:
                changed.append((key, r.cells + shown[0][len(r.cells):], style))
            else:
                self._pending.pop(key, None)
        self._append_rows(added)
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
            self.move_cursor(row=self.row_count - 1, animate=False, scroll=False)
            # now, not after the next frame (DataTable's way), which would show the rows above first
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        elif selected in wanted:
            if self.get_row_index(selected) != self.cursor_row:
                self.move_cursor(row=self.get_row_index(selected), animate=False, scroll=False)
        elif self.row_count and self.cursor_row != min(index, self.row_count - 1):  # its row went: stay where it was
            self.move_cursor(row=min(index, self.row_count - 1), animate=False, scroll=False)
        if self._pending or live is not None:
            self._catch_up()  # rows that other rows' going brought into view

    def _remove_rows(self, keys: list[str]) -> None:
        """DataTable.remove_row for many rows at once: remove_row re-indexes every row left for
        each row it removes. The rows left keep their cells (and what is cached of their drawing)."""
        if not keys:
            return
        gone = set(keys)
        order = [self._row_locations.get_key(i) for i in range(self.row_count)]
        kept = [row_key for row_key in order if row_key.value not in gone]
        if self._updated_cells:
            self._updated_cells = {c for c in self._updated_cells if c.row_key.value not in gone}
        self._new_rows = {row_key for row_key in self._new_rows if row_key.value not in gone}
        # rebuilt from the rows kept, as the index has to be: no cheaper than deleting the rows gone
        self.rows = {row_key: self.rows[row_key] for row_key in kept}
        self._data = {row_key: self._data[row_key] for row_key in kept}
        self._row_locations = TwoWayDict(dict(zip(kept, range(len(kept)))))
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._require_update_dimensions = True
        self._update_count += 1
        height = self.styles.height  # a layout pass repaints every widget: only for a table sized by its rows
        self.refresh(layout=height is None or height.is_auto)
        self.check_idle()

    def _append_rows(self, rows: list[tuple[str, tuple[Cell, ...]]]) -> None:
        """DataTable.add_row for many rows at once: add_row revalidates the cursor and counts an
        update for every row, which made filling a 100,000-row table take half a minute."""
        if not rows:
            return
        was_empty = self.row_count == 0
        keys = [c.key for c in self.ordered_columns]
        index = self.row_count
        for key, cells in rows:
            row_key = RowKey(key)
            self._row_locations[row_key] = index
            self._data[row_key] = dict(zip(keys, cells))
            self.rows[row_key] = TableRow(row_key, 1)
            index += 1
        # Sized now rather than when the app is next idle (DataTable's way): a cursor moved to a
        # new row scrolls there at once instead of after a frame drawn at the wrong place.
        self._new_rows.update(RowKey(key) for key, _ in rows)
        self._update_dimensions(self._new_rows)
        self._new_rows.clear()
        self._require_update_dimensions = False
        self.cursor_coordinate = self.cursor_coordinate
        if was_empty and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # as add_row: a cursor appears, and says so (RowHighlighted)
        self._update_count += 1
        self.check_idle()

    def refresh_live(self) -> None:
        """The live cells (see `sync`) changed, after a metrics poll: redraw them in the rows in
        view now, in the others when they scroll into view."""
        self._live_version += 1
        self._catch_up()

    def _catch_up(self) -> None:
        """Bring the rows in view up to date: pending content, then live cells."""
        live, version, seen = self._live, self._live_version, self._live_seen
        for i in self._in_view():
            key = self._row_locations.get_key(i).value
            if key in self._pending:
                self._show(key, *self._pending.pop(key))
            if live is not None and seen.get(key) != version:
                seen[key] = version
                cells, style = self._shown[key]
                fresh = live(key)
                if cells[len(cells) - len(fresh):] != fresh:
                    self._show(key, cells[:len(cells) - len(fresh)] + fresh, style)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._pending or self._live is not None:
            self._catch_up()


class DrillTable(LiveTable):
    """A LiveTable whose enter (or a click on the highlighted row) opens the row: shown in the footer."""

    BINDINGS = [Binding("enter", "select_cursor", "Drill down")]
