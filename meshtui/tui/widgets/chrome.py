"""Every view's frame: the header (where you are, who you are, the stream's state, the views to
click), the key bar, and the k9s command line (`:` commands, `/` filters)."""
from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, Static
from rich.text import Text

from ..logic.commands import suggestions

VIEWS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"), ("services", "Services"), ("exports", "Exports"), ("policies", "Policies"),
    ("tap", "Tap"), ("top", "Top"), ("topology", "Topology"), ("checks", "Checks"), ("events", "Events"),
)


def set_content(widget: Static, content: str | Text, *, fixed_size: bool = False) -> None:
    """Give `widget` new content only when it differs from what it shows. `fixed_size`: the
    stylesheet fixes the widget's size, so the layout pass (which repaints every widget of the
    screen) is skipped."""
    if widget.content != content:
        widget.update(content, layout=not fixed_size)


class MeshHeader(Static):
    """Two lines: context and state, then the views (number keys or a click)."""

    def show(self, *, view: str, title: str, context: str, user: str, read_only: bool, state: str) -> None:
        if state == "live":
            st = "[$success]● $state[/]"
        elif state.startswith("reconnecting"):
            st = "[$warning]⟳ $state[/]"
        else:
            st = "[$secondary]◌ $state[/]"
        mode = "[reverse $warning] READ-ONLY [/]" if read_only else "[$text-muted]read-write[/]"
        nav = "  ".join(
            (f"[reverse $primary]{i} {label}[/]" if name == view else f"[@click=app.open_view('{name}')]{i} {label}[/]")
            for i, (name, label) in enumerate(VIEWS, 1)
        )
        # $names are substituted as literal text, so filters and states need no escaping
        values = dict(title=title, context=context, user=user or "-", state=state)
        if values != getattr(self, "_shown", None) or (view, read_only) != getattr(self, "_where", None):
            self._shown, self._where = values, (view, read_only)
            # its height is fixed and it fills the width: no layout pass (which repaints every widget)
            self.update(Content.from_markup(
                f"[b reverse $accent] meshtui [/] [b]$title[/] $context  │ user [b]$user[/] │ {mode} │ {st}\n{nav}", **values),
                layout=False)


class KeyBar(Static):
    """The current view's keys, clickable, like Textual's Footer. Hand-written because Footer
    (Textual 8) keeps every key widget it ever composed alive through a data binding, growing a
    little on each view switch: a TUI left open for days cannot have that."""

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def _bindings_changed(self, screen) -> None:
        parts = []
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.show:
                continue
            style = "b $accent" if active.enabled else "dim"
            parts.append(f"[@click=app.simulate_key('{key}')][{style}]{self.app.get_key_display(binding)}[/] {binding.description}[/]")
        parts.append("[@click=app.command_palette][b $accent]^p[/] palette[/]")
        markup = "  ".join(parts)
        if markup != getattr(self, "_markup", None):  # the signal fires on every focus change
            self._markup = markup
            self.update(Content.from_markup(markup))


class CommandBar(Horizontal):
    """Hidden until `:` or `/`. While it is open the app hands it each key as it reads it (see
    MeshApp.on_event) rather than through the input's own message queue, so keys read together,
    as in a paste or `tmux send-keys ':svc' Enter '/api' Enter`, act in order. Posts Changed as
    the text changes (live filtering)."""

    class Changed(Message):
        def __init__(self, mode: str, value: str) -> None:
            super().__init__()
            self.mode, self.value = mode, value

    def __init__(self) -> None:
        super().__init__(id="command-bar")
        self.mode = ""

    def compose(self) -> ComposeResult:
        yield Label(":", id="command-prompt")
        yield Input(id="command-input", suggester=SuggestFromList(suggestions(), case_sensitive=False))

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def open(self, mode: str, value: str = "") -> None:
        self.mode = mode
        self.query_one(Label).update(":" if mode == "command" else "/")
        inp = self.input
        inp.placeholder = "kind or view [@cluster]  (svc, gtp @cluster-2, tap, q)" if mode == "command" else "regex; !regex inverts"
        inp.value = value
        self.display = True
        # Synchronously, not Widget.focus() (which queues the change behind keys already read).
        self.screen.set_focus(inp)

    def close(self) -> None:
        self.display = False

    async def edit(self, event: events.Key) -> bool:
        """Apply a typed character or one of the input's editing keys now; False for other keys."""
        inp = self.input
        if event.is_printable and event.character:
            if inp.selection.is_empty:
                inp.insert_text_at_cursor(event.character)
            else:
                inp.replace(event.character, *inp.selection)
            return True
        active = self.screen.active_bindings.get(event.key)
        if active is None or active.node is not inp or active.binding.action == "submit":
            return False
        await inp.run_action(active.binding.action)
        return True

    @on(Input.Changed, "#command-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.display:
            self.post_message(self.Changed(self.mode, event.value))
