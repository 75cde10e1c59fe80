"""What every view shares: the frame (header, command line, footer), the fixed redraw tick, the
cluster selection and `/` filter, and for resource tables the k9s keys d, y, e and ctrl-d."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from ..logic.describe import describe, to_yaml
from ..logic.filtering import RowFilter
from ..widgets.chrome import VIEWS, CommandBar, KeyBar, MeshHeader
from ..widgets.tables import Col, LiveTable, Row
from .confirm import ConfirmScreen
from .editor import EditorScreen
from .text_view import TextViewScreen

if TYPE_CHECKING:
    from ..app import MeshApp

Obj = dict[str, Any]


class MeshScreen(Screen):
    VIEW: ClassVar[str] = ""
    TICK: ClassVar[float] = 1.0  # seconds between redraws from the buffers
    WRITE_ACTIONS: ClassVar[frozenset[str]] = frozenset()
    BINDINGS = [Binding("escape", "back", "Back", show=False)]

    app: "MeshApp"

    def __init__(self) -> None:
        super().__init__()
        self.cluster: str | None = None  # None: every cluster
        self.row_filter = RowFilter()
        self._drawn: tuple | None = None

    @property
    def title_text(self) -> str:
        return dict(VIEWS).get(self.VIEW, self.VIEW.title())

    def compose(self) -> ComposeResult:
        yield MeshHeader(id="header")
        yield from self.body()
        bar = CommandBar()
        bar.display = False
        yield bar
        yield KeyBar(id="keys")

    def body(self) -> ComposeResult:
        raise NotImplementedError

    def draw(self) -> None:
        """Redraw the widgets from the app's buffers (diff-updates only)."""
        raise NotImplementedError

    def data_version(self) -> tuple:
        """What the view is drawn from; it is redrawn on its tick only when this changed."""
        return (self.app.cache.generation, self.app.style_version)

    # tick --------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.set_interval(self.TICK, self.tick)

    def on_screen_resume(self) -> None:
        self.redraw()

    def tick(self) -> None:
        if self.is_current and self._drawn != self._version():
            self.redraw()

    def _version(self) -> tuple:
        return (self.data_version(), self.row_filter.text, self.cluster)

    def redraw(self) -> None:
        self._drawn = self._version()
        self.refresh_header()
        self.draw()

    def refresh_header(self) -> None:
        app = self.app
        parts = [f"@{self.cluster}" if self.cluster else "@all"]
        if self.row_filter.active:
            parts.append(f"/{self.row_filter.text}")
        self.query_one(MeshHeader).show(view=self.VIEW, title=self.title_text, context=" ".join(parts), user=app.user,
                                         read_only=app.read_only, state=app.connection_state)

    # selection and filter ----------------------------------------------------------------
    def set_cluster(self, cluster: str | None) -> None:
        self.cluster = cluster or None
        self.redraw()

    def set_filter(self, text: str) -> None:
        self.row_filter = RowFilter.compile(text)
        if self.row_filter.error:
            self.notify(self.row_filter.error, severity="warning", timeout=3)
        self.redraw()

    @property
    def command_bar(self) -> CommandBar:
        return self.query_one(CommandBar)

    def open_command_bar(self, mode: str) -> None:
        self.command_bar.open(mode, self.row_filter.text if mode == "filter" else "")

    async def command_entered(self) -> None:
        bar = self.command_bar
        bar.close()
        self.focus_main()
        # Let the input's completion lookups for what was just typed finish: `:q` typed in one
        # burst would otherwise exit with them never started.
        lookups = [w for w in self.app.workers if w.node is bar.input]
        if lookups:
            await self.app.workers.wait_for_complete(lookups)
        if bar.mode == "command":
            await self.app.run_command(bar.input.value)
        else:
            self.set_filter(bar.input.value)

    def command_cancelled(self) -> None:
        self.command_bar.close()
        self.focus_main()
        if self.command_bar.mode == "filter":
            self.set_filter("")

    @on(CommandBar.Changed)
    def _command_changed(self, event: CommandBar.Changed) -> None:
        if event.mode == "filter":
            self.set_filter(event.value)

    def focus_main(self) -> None:
        main = self.query("#main")
        if main:
            self.set_focus(main.first())  # at once, like CommandBar.open: keys already read follow it

    def action_back(self) -> None:
        if self.row_filter.active:
            self.set_filter("")
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    # read-only ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.WRITE_ACTIONS and self.app.read_only:
            return False  # hidden from the footer and help; a key press is refused by the app
        return True

    def write_keys(self) -> dict[str, str]:
        """key -> description of this view's write bindings (to refuse them by name when read-only)."""
        out: dict[str, str] = {}
        for cls in type(self).__mro__:
            for binding in cls.__dict__.get("BINDINGS", ()):
                if isinstance(binding, Binding) and binding.action in self.WRITE_ACTIONS:
                    for key in binding.key.split(","):
                        out.setdefault(key.strip(), binding.description or binding.action)
        return out


class TableScreen(MeshScreen):
    """A view whose main widget is a table of resources (`self.objects` maps its rows to them)."""

    WRITE_ACTIONS = frozenset({"edit", "delete"})
    # Trailing columns that change on their own clock (metrics every poll, ages): not matched by
    # the `/` filter, and when only they changed, recomputed for the rows in view only
    # (LiveTable.refresh_live); the rest catch up as they scroll into view.
    LIVE_COLUMNS: ClassVar[int] = 0
    BINDINGS = [
        Binding("d", "describe", "Describe"),
        Binding("y", "yaml", "YAML"),
        Binding("e", "edit", "Edit"),
        Binding("ctrl+d", "delete", "Delete"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, Obj] = {}  # row key -> the resource behind the row
        self._rows_drawn: tuple | None = None

    def body(self) -> ComposeResult:
        yield LiveTable(id="main")

    @property
    def table(self) -> LiveTable:
        return self.query_one("#main", LiveTable)

    def build(self) -> tuple[list[Col], list[Row]]:
        """Columns and every row (before the `/` filter); fills self.objects. A row's cells are
        followed by LIVE_COLUMNS more, `live_cells(row key)`."""
        raise NotImplementedError

    def live_cells(self, key: str) -> tuple[str, ...]:
        """The cells of the live columns of a row."""
        return ()

    def live_version(self) -> tuple:
        """What the live columns are drawn from: when only this changed, the other cells stand."""
        return ()

    def _version(self) -> tuple:
        return (super()._version(), self.live_version())

    def draw(self) -> None:
        rows_version = super()._version()
        if self.LIVE_COLUMNS and rows_version == self._rows_drawn:
            with self.app.batch_update():
                self.table.refresh_live()
            return
        self._rows_drawn = rows_version
        self.objects = {}
        cols, rows = self.build()
        rows = [r for r in rows if self.row_filter.matches(r.cells)]
        with self.app.batch_update():
            self.table.set_columns(cols)
            self.table.sync(rows, self.app.accent_style, self.live_cells if self.LIVE_COLUMNS else None)

    def selected_object(self) -> Obj | None:
        key = self.table.selected_key()
        return self.objects.get(key) if key else None

    def _target(self) -> Obj | None:
        obj = self.selected_object()
        if obj is None:
            self.notify("nothing selected", severity="warning", timeout=2)
        return obj

    @staticmethod
    def label(obj: Obj) -> str:
        md = obj["metadata"]
        where = f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]
        return f"{obj['kind']} {where}" + (f" @{md['cluster']}" if md.get("cluster") else "")

    async def action_describe(self) -> None:
        obj = self._target()
        if obj is None:
            return
        md = obj["metadata"]
        history = [a for a in await self.app.controller.audit(500)
                   if a.kind == obj["kind"] and a.name == md["name"] and a.cluster == md.get("cluster", "")
                   and a.namespace == md.get("namespace", "")]
        self.app.push_screen(TextViewScreen(f"Describe {self.label(obj)}", describe(obj, history)))

    def action_yaml(self) -> None:
        obj = self._target()
        if obj is not None:
            self.app.push_screen(TextViewScreen(f"YAML {self.label(obj)}", to_yaml(obj)))

    def action_edit(self) -> None:
        if self.app.refuse_write("edit"):
            return
        obj = self._target()
        if obj is not None:
            self.app.push_screen(EditorScreen(obj))

    @work(exclusive=True, group="delete")
    async def action_delete(self) -> None:
        if self.app.refuse_write("delete"):
            return
        obj = self._target()
        if obj is None:
            return
        if not await self.app.push_screen_wait(ConfirmScreen(f"Delete {self.label(obj)}?")):
            return
        await self.app.delete_object(obj)
