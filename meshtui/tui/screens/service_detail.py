"""One service in one cluster: who calls it from which cluster (edges), where its requests go
(local backends and remote gateways, with their readiness), and its live requests."""
from __future__ import annotations

from functools import partial

from textual.app import ComposeResult
from textual.widgets import Label

from proxy.events import TapFilter

from ..live.streams import follow_tap
from ..live.traffic import TapBuffer
from ..logic import fmt
from ..logic.clusters import gateway_state, names_by_key
from ..logic.services import import_sources, importers_index, local_backends, remote_backends
from ..logic.traffic import TAP_COLUMNS, failed, tap_cells
from ..widgets.chrome import set_content
from ..widgets.tables import Col, LiveTable, Row
from .base import MeshScreen

LIVE_ROWS = 100


class ServiceDetailScreen(MeshScreen):
    VIEW = "services"
    TICK = 0.1

    def __init__(self, cluster: str, namespace: str, name: str) -> None:
        super().__init__()
        self.target = (cluster, namespace, name)
        self.buffer = TapBuffer(capacity=LIVE_ROWS)
        self.tap_state = "starting"

    @property
    def title_text(self) -> str:
        cluster, namespace, name = self.target
        return f"Service {name}.{namespace} in {cluster}"

    def body(self) -> ComposeResult:
        yield Label("EDGES — which cluster calls which for it", classes="section-title")
        yield LiveTable(id="edges")
        yield Label("ENDPOINTS — where its requests go", classes="section-title")
        yield LiveTable(id="endpoints")
        yield Label("", id="live-title", classes="section-title")
        yield LiveTable(id="main", follow=True)

    def data_version(self) -> tuple:
        return (*super().data_version(), self.app.golden.generation, self.buffer.version)

    # live requests ------------------------------------------------------------------------
    def on_screen_resume(self) -> None:
        cluster, namespace, name = self.target
        flt = TapFilter(cluster=cluster, namespace=namespace, service=name)
        self.run_worker(partial(follow_tap, self.app.controller, flt, self.buffer.add, self._set_tap_state), group="tap", exclusive=True)
        super().on_screen_resume()

    def on_screen_suspend(self) -> None:
        self.workers.cancel_group(self, "tap")

    def _set_tap_state(self, state: str) -> None:
        self.tap_state = state

    # drawing ------------------------------------------------------------------------------
    def draw(self) -> None:
        app = self.app
        cluster, namespace, name = self.target
        accent = app.accent_style
        production = app.production()
        with app.batch_update():
            edges = self.query_one("#edges", LiveTable)
            edges.set_columns([Col("from", "FROM"), Col("to", "TO"), Col("sr", "SUCCESS", True), Col("rps", "RPS", True),
                               Col("p50", "P50", True), Col("p99", "P99", True)])
            rows = {}
            callers = [(caller, cluster) for caller in importers_index(app.cache).get(self.target, [])]
            exporters = import_sources(app.cache.get("ServiceImport", *self.target), names_by_key(app.cache.list("Cluster")))
            for src, dst in callers + [(cluster, exporter) for exporter in exporters]:  # edges that may carry traffic
                rows[f"{src}>{dst}"] = Row(f"{src}>{dst}", (src, dst, "-", "-", "-", "-"), src in production)
            for g in app.golden.edges:
                if (g.namespace, g.service) == (namespace, name) and cluster in (g.src_cluster, g.dst_cluster):
                    key = f"{g.src_cluster}>{g.dst_cluster}"
                    rows[key] = Row(key, (g.src_cluster, g.dst_cluster, fmt.pct(g.success_rate), fmt.rps(g.rps),
                                          fmt.ms(g.p50_ms), fmt.ms(g.p99_ms)), g.src_cluster in production)
            edges.sync(sorted(rows.values(), key=lambda r: r.key), accent)

            endpoints = self.query_one("#endpoints", LiveTable)
            endpoints.set_columns([Col("address", "ADDRESS"), Col("cluster", "CLUSTER"), Col("via", "VIA"), Col("ready", "READY"),
                                   Col("ejected", "EJECTED")])
            links = app.cache.list("Link")
            alive = {c["metadata"]["name"]: gateway_state(c, links)[0] for c in app.cache.list("Cluster")}
            backends = local_backends(app.cache, *self.target) + remote_backends(app.cache, *self.target, alive)
            endpoints.sync([
                Row(f"{b.cluster}|{b.address}", (b.address, b.cluster, b.via, "-" if b.ready is None else ("yes" if b.ready else "NO"), "-"),
                    b.cluster in production)
                for b in backends], accent)

            records = self.buffer.latest(LIVE_ROWS)
            set_content(self.query_one("#live-title", Label),
                        f"LIVE REQUESTS — {len(records)} shown, {self.buffer.events} events, tap {self.tap_state}", fixed_size=True)
            live = self.query_one("#main", LiveTable)
            live.set_columns([Col(c.lower(), c) for c in TAP_COLUMNS])
            rows_live = [Row(r.id, tap_cells(r), failed(r)) for r in records]
            live.sync([r for r in rows_live if self.row_filter.matches(r.cells)], app.failure_style)
