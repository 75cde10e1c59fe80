"""`?`: every key of the view underneath (its bindings, the app's and the focused widget's), minus
the ones hidden in this mode (writes when read-only), plus the command line's grammar."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label, Static

GRAMMAR = """\
:KIND [@cluster]   a resource view: svc, svcexp, svcimp, gtp, ep, eps, ts, wl, cl, ln (any alias)
:raw KIND          the generic table of a kind even where a richer view exists
:VIEW              overview, tap, top, topology, checks, events   ·   :@cluster  only change the cluster
:theme NAME        switch theme        :q  quit
/regex             filter rows (case-insensitive); /!regex keeps rows that do not match; esc clears
mouse              click rows, column headers, the views in the header and the keys in the footer"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, str]] = []
        for key, active in sorted(under.active_bindings.items(), key=lambda kv: type(kv[1].node).__name__):
            b = active.binding
            if not b.description:
                continue
            self.rows.append((under.app.get_key_display(b), b.description, type(active.node).__name__))

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Keys", classes="dialog-title")
            yield DataTable(id="help-keys", cursor_type="row")
            yield Static(GRAMMAR, id="help-grammar")
            yield Label("esc close", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("KEY", "ACTION", "WHERE")
        for row in self.rows:
            table.add_row(*(Text(c) for c in row))

    def action_close(self) -> None:
        self.dismiss(None)
