"""`e`: edit a resource as YAML. The text is checked as YAML here, then applied through the
controller, which validates it all or nothing; a refusal is shown inline and the editor stays
open with the text as typed."""
from __future__ import annotations

from typing import Any

import yaml
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TextArea

from controller.errors import MeshError

from ..logic.describe import editable_yaml


def yaml_problem(text: str) -> str:
    """'' when `text` is one or more YAML mappings, else where and what is wrong."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"YAML: {where}{getattr(e, 'problem', None) or e}"
    if not docs:
        return "YAML: no document to apply"
    bad = next((i for i, d in enumerate(docs, 1) if not isinstance(d, dict)), None)
    return f"YAML: document {bad} is not a mapping" if bad else ""


class EditorScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("ctrl+s", "apply", "Apply"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, obj: dict[str, Any]) -> None:
        super().__init__()
        md = obj["metadata"]
        self.cluster, self.namespace = md.get("cluster"), md.get("namespace")
        where = f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]
        self.title_text = f"Edit {obj['kind']} {where}" + (f" @{self.cluster}" if self.cluster else "")
        self.text = editable_yaml(obj)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text, classes="dialog-title")
            yield TextArea(self.text, show_line_numbers=True, id="yaml-editor")
            yield Static("", id="editor-error")
            yield Label("ctrl+s apply · esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def show_error(self, message: str) -> None:
        err = self.query_one("#editor-error", Static)
        err.update(message)
        err.set_class(bool(message), "visible")

    async def action_apply(self) -> None:
        app = self.app
        if app.refuse_write("edit"):
            return
        text = self.query_one(TextArea).text
        problem = yaml_problem(text)
        if problem:
            self.show_error(problem)
            return
        try:
            await app.controller.apply(text, cluster=self.cluster, namespace=self.namespace, user=app.user)
        except MeshError as e:
            self.show_error(e.message)
            return
        app.notify(f"applied: {self.title_text.removeprefix('Edit ')}")
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
