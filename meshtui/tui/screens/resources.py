"""The generic resource table, reachable with `:KIND` for every kind (`:raw KIND` even where a
richer view exists): CLUSTER first when no cluster is selected."""
from __future__ import annotations

from controller.model import BY_NAME

from ..logic.resources import age_cell, resource_cells, resource_columns
from ..widgets.tables import Col, Row
from .base import TableScreen


class ResourcesScreen(TableScreen):
    VIEW = "resources"
    LIVE_COLUMNS = 1  # AGE

    def __init__(self) -> None:
        super().__init__()
        self.kind = "ServiceImport"

    @property
    def title_text(self) -> str:
        return f"Resources: {BY_NAME[self.kind].plural}"

    def set_kind(self, kind: str) -> None:
        if kind != self.kind:
            self.kind = kind
            self.redraw()

    def build(self) -> tuple[list[Col], list[Row]]:
        every = self.cluster is None
        labels = resource_columns(self.kind, every)
        cols = [Col(label.lower(), label, label == "AGE") for label in labels]
        production = self.app.production()
        rows = []
        for obj in self.app.cache.list(self.kind, self.cluster if BY_NAME[self.kind].namespaced else None):
            md = obj["metadata"]
            key = "/".join((md.get("cluster", ""), md.get("namespace", ""), md["name"]))
            self.objects[key] = obj
            owner = md.get("cluster") or (md["name"] if self.kind == "Cluster" else "")
            rows.append(Row(key, resource_cells(obj, every), accent=owner in production))
        return cols, rows

    def data_version(self) -> tuple:
        return (*super().data_version(), self.kind)

    def live_version(self) -> tuple:
        return (int(self.app.clock()) // 10,)  # ages move every 10 s

    def live_cells(self, key: str) -> tuple[str, ...]:
        obj = self.objects.get(key)
        return (age_cell(obj, self.app.clock()) if obj else "-",)
