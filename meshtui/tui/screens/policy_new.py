"""`n` in Policies: choose the service (in its cluster) a new GlobalTrafficPolicy is for."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select


class NewPolicyScreen(ModalScreen[tuple[str, str, str] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, services: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.services = services

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New GlobalTrafficPolicy: for which service, as seen from which cluster?", classes="dialog-title")
            yield Select([(f"{n}.{ns} in {c}", (c, ns, n)) for c, ns, n in self.services], prompt="service", id="policy-service")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Edit", id="ok", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        value = self.query_one(Select).value
        self.dismiss(value if event.button.id == "ok" and value != Select.NULL else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
