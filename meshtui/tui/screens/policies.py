"""Policies: every GlobalTrafficPolicy with the share of traffic it gives each cluster, and the
editor of the highlighted one (ctrl+s applies through the controller)."""
from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from ..logic.clusters import key_of_cluster, names_by_key
from ..logic.policy import effective_share
from ..logic.services import import_sources, local_backends, service_key
from ..widgets.policy import PolicyContext, PolicyEditor
from ..widgets.tables import Col, LiveTable, Row
from .base import TableScreen
from .policy_new import NewPolicyScreen

POLICY_API = "flomesh.io/v1alpha1"


class PoliciesScreen(TableScreen):
    VIEW = "policies"
    WRITE_ACTIONS = TableScreen.WRITE_ACTIONS | {"apply_policy", "new_policy"}
    BINDINGS = [
        Binding("ctrl+s", "apply_policy", "Apply policy"),
        Binding("n", "new_policy", "New policy"),
    ]

    def body(self) -> ComposeResult:
        yield LiveTable(id="main", classes="policies")
        yield PolicyEditor()

    @property
    def editor(self) -> PolicyEditor:
        return self.query_one(PolicyEditor)

    def on_mount(self) -> None:
        super().on_mount()
        self.editor.read_only = self.app.read_only

    def context_for(self, cluster: str, namespace: str, name: str) -> PolicyContext:
        cache = self.app.cache
        clusters = cache.list("Cluster")
        by_key = names_by_key(clusters)
        return PolicyContext(
            cluster, namespace, name,
            existing=cache.get("GlobalTrafficPolicy", cluster, namespace, name),
            members=[(c["metadata"]["name"], key_of_cluster(c)) for c in clusters if c["metadata"]["name"] != cluster],
            known_keys=set(by_key),
            local_ready=any(b.ready is not False for b in local_backends(cache, cluster, namespace, name)),
            reachable=set(import_sources(cache.get("ServiceImport", cluster, namespace, name), by_key)),
        )

    def build(self) -> tuple[list[Col], list[Row]]:
        app = self.app
        every = self.cluster is None
        cols = ([Col("cluster", "CLUSTER")] if every else []) + [
            Col("ns", "NAMESPACE"), Col("name", "NAME"), Col("lb", "LBTYPE"), Col("targets", "TARGETS"),
            Col("valid", "VALID"), Col("share", "EFFECTIVE SHARE")]
        production = app.production()
        by_key = names_by_key(app.cache.list("Cluster"))
        rows = []
        for p in app.cache.list("GlobalTrafficPolicy", self.cluster):
            md = p["metadata"]
            key = service_key(md["cluster"], md["namespace"], md["name"])
            self.objects[key] = p
            spec = p.get("spec") or {}
            lb = spec.get("lbType", "Locality")
            targets = [(by_key.get(t["clusterKey"], t["clusterKey"]), t.get("weight")) for t in spec.get("targets", [])]
            ctx = self.context_for(md["cluster"], md["namespace"], md["name"])
            share = effective_share(lb, md["cluster"], ctx.local_ready, targets, ctx.reachable)
            valid = next((c for c in (p.get("status") or {}).get("conditions", []) if c["type"] == "Valid"), None)
            cells = ([md["cluster"]] if every else []) + [
                md["namespace"], md["name"], lb,
                ",".join(f"{n}" + (f"={w}" if w is not None else "") for n, w in targets) or "-",
                "-" if valid is None else ("yes" if valid["status"] == "True" else f"NO: {valid.get('message', '')}"),
                " ".join(f"{n} {f * 100:.0f}%" for n, f in sorted(share.items())) or "none (503)"]
            rows.append(Row(key, tuple(cells), accent=md["cluster"] in production))
        return cols, rows

    def draw(self) -> None:
        super().draw()
        editor = self.editor
        ctx = editor.context
        if ctx is None:
            key = self.table.selected_key()
            if key:
                self.load_editor(key)
            return
        current = self.app.cache.get("GlobalTrafficPolicy", ctx.cluster, ctx.namespace, ctx.name)
        if not editor.dirty and current != ctx.existing:  # changed elsewhere (or just applied): show what is stored
            self.load_editor(ctx.key)

    @work(exclusive=True, group="editor")
    async def load_editor(self, key: str) -> None:
        cluster, namespace, name = key.split("/", 2)
        await self.editor.load(self.context_for(cluster, namespace, name))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key else None
        ctx = self.editor.context
        if key is None or (ctx is not None and ctx.key == key):
            return
        if self.editor.dirty:
            self.notify(f"discarded unsaved changes to {ctx.name} in {ctx.cluster}", severity="warning", timeout=3)
        self.load_editor(key)

    def edit_policy(self, cluster: str, namespace: str, name: str) -> None:
        """Open the editor on this service's policy in this cluster (a new draft when there is none)."""
        key = service_key(cluster, namespace, name)
        self.load_editor(key)
        if key in self.objects:
            self.table.move_cursor(row=self.table.get_row_index(key))

    @on(PolicyEditor.ApplyRequested)
    async def _apply_requested(self) -> None:
        await self.action_apply_policy()

    async def action_apply_policy(self) -> None:
        if self.app.refuse_write("apply policy"):
            return
        editor = self.editor
        ctx = editor.context
        if ctx is None:
            self.notify("no policy in the editor", severity="warning")
            return
        spec, errors = editor.draft()
        if errors:
            self.notify("\n".join(errors), title="policy not applied", severity="error")
            return
        md: dict = {"name": ctx.name, "namespace": ctx.namespace, "cluster": ctx.cluster}
        if ctx.existing is not None:
            md["resourceVersion"] = ctx.existing["metadata"]["resourceVersion"]
        manifest = {"apiVersion": POLICY_API, "kind": "GlobalTrafficPolicy", "metadata": md, "spec": spec}
        if await self.app.apply_objects([manifest], "apply policy"):
            editor.mark_applied()
            self.notify(f"policy {ctx.name} in {ctx.cluster}: {spec['lbType']} applied")

    @work(exclusive=True, group="new-policy")
    async def action_new_policy(self) -> None:
        if self.app.refuse_write("new policy"):
            return
        services = sorted({(o["metadata"]["cluster"], o["metadata"]["namespace"], o["metadata"]["name"])
                           for kind in ("Service", "ServiceImport") for o in self.app.cache.list(kind)})
        choice = await self.app.push_screen_wait(NewPolicyScreen(services))
        if choice:
            self.edit_policy(*choice)
