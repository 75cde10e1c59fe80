"""Topology: which cluster and service calls which, with success rate and RPS per edge."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..logic.topology import federation_edges, render_topology
from ..widgets.chrome import set_content
from .base import MeshScreen


class TopologyScreen(MeshScreen):
    VIEW = "topology"

    def body(self) -> ComposeResult:
        with VerticalScroll(id="main"):
            yield Static("", id="topology")

    def data_version(self) -> tuple:
        return (*super().data_version(), self.app.golden.generation)

    def draw(self) -> None:
        app = self.app
        clusters = [c for c in app.cache.cluster_names() if not self.cluster or c == self.cluster]
        edges = [e for e in federation_edges(app.cache, app.golden.edges)
                 if (not self.cluster or self.cluster in (e.src, e.dst))
                 and self.row_filter.matches((e.src, e.dst, e.service, e.namespace))]
        theme = app.current_theme
        text = render_topology(clusters, edges, app.production(), accent=app.accent_style, bad=f"bold {theme.error or 'red'}")
        set_content(self.query_one("#topology", Static), text)
