"""The form behind the Exports view's `r`: an export's rules, its audience (which clusters may
import it) and who may call it, checked as you type; returns the spec to apply."""
from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from ..logic.exports import LOAD_BALANCERS, PATH_TYPES, RuleDraft, validate_export_draft


class RuleRow(Horizontal):
    def __init__(self, port: str, path: str, path_type: str) -> None:
        super().__init__(classes="rule-row")
        self.port = Input(port, placeholder="port", classes="port", type="integer")
        self.path = Input(path, placeholder="/path", classes="path")
        self.path_type = Select([(t, t) for t in PATH_TYPES], value=path_type, allow_blank=False)

    def compose(self) -> ComposeResult:
        yield self.port
        yield self.path
        yield self.path_type
        yield Button("✕", classes="remove-rule")

    def draft(self) -> RuleDraft:
        return RuleDraft(self.port.value, self.path.value, str(self.path_type.value))


class ExportFormScreen(ModalScreen[dict | None]):
    BINDINGS = [
        Binding("ctrl+s", "apply", "Apply"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, spec: dict, clusters: list[tuple[str, str]]) -> None:
        """`clusters`: (name, clusterKey) of every member that could import the service."""
        super().__init__()
        self.title_text, self.spec, self.clusters = title, spec, clusters

    def compose(self) -> ComposeResult:
        audience = set(self.spec.get("targetClusters") or [])
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll():
                yield Label("Rules: port · path · type")
                with Vertical(id="rules"):
                    for r in self.spec.get("rules", []):
                        yield RuleRow(str(r["portNumber"]), r.get("path", "/"), r.get("pathType", "Prefix"))
                yield Button("+ rule", id="add-rule")
                with Horizontal(classes="form-row"):
                    yield Label("Service account", classes="label")
                    yield Input(self.spec.get("serviceAccountName", "*"), id="service-account", placeholder="* or a name")
                with Horizontal(classes="form-row"):
                    yield Label("Load balancer", classes="label")
                    yield Select([(b, b) for b in LOAD_BALANCERS], value=self.spec.get("loadBalancer", LOAD_BALANCERS[0]),
                                 allow_blank=False, id="load-balancer")
                yield Label("Audience: clusters allowed to import (none selected = every member)")
                yield SelectionList[str](*((f"{name}  ({key})", key, key in audience or name in audience) for name, key in self.clusters),
                                         id="audience")
                yield Static("", id="form-errors")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Apply", id="apply", variant="primary")

    def on_mount(self) -> None:
        self.validate_form()

    def draft(self) -> tuple[dict | None, list[str]]:
        rules = [row.draft() for row in self.query(RuleRow)]
        return validate_export_draft(rules, self.query_one("#service-account", Input).value,
                                     list(self.query_one("#audience", SelectionList).selected),
                                     str(self.query_one("#load-balancer", Select).value))

    def validate_form(self) -> None:
        _, errors = self.draft()
        self.query_one("#form-errors", Static).update(Text("\n".join(f"✘ {e}" for e in errors)))
        self.query_one("#apply", Button).disabled = bool(errors)

    @on(Input.Changed)
    @on(Select.Changed)
    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        self.validate_form()

    @on(Button.Pressed, "#add-rule")
    async def _add_rule(self) -> None:
        await self.query_one("#rules").mount(RuleRow("", "/", "Prefix"))
        self.validate_form()

    @on(Button.Pressed, ".remove-rule")
    async def _remove_rule(self, event: Button.Pressed) -> None:
        await event.button.parent.remove()
        self.validate_form()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        spec, errors = self.draft()
        if errors:
            self.validate_form()
            return
        self.dismiss(spec)
