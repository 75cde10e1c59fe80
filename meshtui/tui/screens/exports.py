"""Exports: every service of every cluster with its export — to whom, which rules, its state and
who imports it; `x` exports or stops exporting, `r` edits rules and audience."""
from __future__ import annotations

from textual import work
from textual.binding import Binding

from ..logic.clusters import key_of_cluster
from ..logic.exports import default_export_spec, export_manifest
from ..logic.services import audience, export_state, importers_index, service_key
from ..widgets.tables import Col, Row
from .base import TableScreen
from .confirm import ConfirmScreen
from .export_form import ExportFormScreen


class ExportsScreen(TableScreen):
    VIEW = "exports"
    WRITE_ACTIONS = TableScreen.WRITE_ACTIONS | {"toggle_export", "edit_export"}
    BINDINGS = [
        Binding("x", "toggle_export", "Export/unexport"),
        Binding("r", "edit_export", "Rules & audience"),
    ]

    def build(self) -> tuple[list[Col], list[Row]]:
        app = self.app
        cache = app.cache
        every = self.cluster is None
        cols = ([Col("cluster", "CLUSTER")] if every else []) + [
            Col("ns", "NAMESPACE"), Col("name", "SERVICE"), Col("exported", "EXPORTED"), Col("audience", "AUDIENCE"),
            Col("rules", "RULES"), Col("sa", "CALLERS"), Col("lb", "BALANCER"), Col("state", "STATE"), Col("importers", "IMPORTED BY")]
        by_key = {key_of_cluster(c): c["metadata"]["name"] for c in cache.list("Cluster")}
        imported_by = importers_index(cache)
        keys = {(o["metadata"]["cluster"], o["metadata"]["namespace"], o["metadata"]["name"])
                for kind in ("Service", "ServiceExport") for o in cache.list(kind, self.cluster)}
        production = app.production()
        rows = []
        for c, ns, name in sorted(keys):
            export = cache.get("ServiceExport", c, ns, name)
            key = service_key(c, ns, name)
            obj = export or cache.get("Service", c, ns, name)
            if obj is not None:
                self.objects[key] = obj
            spec = (export or {}).get("spec") or {}
            rules = ",".join(f"{r['portNumber']}→{r.get('path', '/')}" for r in spec.get("rules", []))
            cells = ([c] if every else []) + [
                ns, name, "yes" if export else "-", audience(export, by_key) if export else "-", rules or "-",
                spec.get("serviceAccountName", "-") if export else "-",
                spec.get("loadBalancer", "-").removesuffix("LoadBalancer") if export else "-",
                (export_state(export) or "-") if export else "-",
                ",".join(imported_by.get((c, ns, name), [])) or "-"]
            rows.append(Row(key, tuple(cells), accent=c in production))
        return cols, rows

    def _selected_for_write(self, action: str) -> tuple[tuple[str, str, str], dict | None] | None:
        """(cluster, namespace, name) of the selected service and its ServiceExport, or None
        when writes are refused or nothing is selected (the user has been told)."""
        if self.app.refuse_write(action):
            return None
        key = self.table.selected_key()
        if key is None:
            self.notify("nothing selected", severity="warning", timeout=2)
            return None
        c, ns, name = key.split("/", 2)
        return (c, ns, name), self.app.cache.get("ServiceExport", c, ns, name)

    @work(exclusive=True, group="export")
    async def action_toggle_export(self) -> None:
        selected = self._selected_for_write("export")
        if selected is None:
            return
        target, export = selected
        cache = self.app.cache
        if export is None:
            service = cache.get("Service", *target)
            if service is None:
                self.notify(f"{target[2]} has no Service in {target[0]} to export", severity="error")
                return
            if await self.app.apply_objects([export_manifest(*target, default_export_spec(service))], "export"):
                self.notify(f"exported {target[2]}.{target[1]} from {target[0]} to every member cluster")
            return
        importers = importers_index(cache).get(target, [])
        question = f"Stop exporting {target[2]}.{target[1]} from {target[0]}?"
        if importers:
            question += f" Its import goes away in {', '.join(importers)}."
        if await self.app.push_screen_wait(ConfirmScreen(question, "Unexport")):
            await self.app.delete_object(export)

    @work(exclusive=True, group="export")
    async def action_edit_export(self) -> None:
        selected = self._selected_for_write("edit export")
        if selected is None:
            return
        target, export = selected
        cache = self.app.cache
        service = cache.get("Service", *target)
        if export is None and service is None:
            return
        spec = export["spec"] if export else default_export_spec(service)
        clusters = [(c["metadata"]["name"], key_of_cluster(c)) for c in cache.list("Cluster") if c["metadata"]["name"] != target[0]]
        result = await self.app.push_screen_wait(ExportFormScreen(f"Export {target[2]}.{target[1]} from {target[0]}", spec, clusters))
        if result is None:
            return
        rv = export["metadata"].get("resourceVersion") if export else None
        if await self.app.apply_objects([export_manifest(*target, result, rv)], "export"):
            self.notify(f"export of {target[2]}.{target[1]} in {target[0]} applied")
