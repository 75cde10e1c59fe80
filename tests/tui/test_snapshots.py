"""Snapshots of every view at 120x36 on the reference scenario with recorded traffic.

Ages are frozen (the app's clock is pinned two minutes after the last write) and golden metrics
are polled a fixed number of times, so the pictures are the same on every run. Update them with
`pytest tests/tui --snapshot-update` and look at the report before committing."""
from __future__ import annotations

import asyncio

import pytest

from controller.embedded import EmbeddedController
from meshtui.tui.app import MeshApp
from meshtui.tui.logic.fmt import iso_epoch
from meshtui.tui.widgets.tables import LiveTable
from tests.support import apply_reference

from .conftest import SIZE, wait_for
from .recorded import REQUESTS, TAP_EVENTS, RecordedController

PRODUCTION_CLUSTER_3 = "apiVersion: flomesh.io/v1alpha1\nkind: Cluster\nmetadata: {name: cluster-3}\nspec: {production: true}\n"


def scenario_app() -> tuple[MeshApp, RecordedController]:
    controller = RecordedController(asyncio.run(EmbeddedController.open(None)))
    app = MeshApp(controller, user="alice")
    app.golden_interval = 3600  # the test polls by hand: a fixed number of trend points
    return app, controller


def prepared(controller: RecordedController, *keys: str, ready=lambda app: True, top_row: bool = False):
    async def run_before(pilot) -> None:
        app: MeshApp = pilot.app
        await apply_reference(controller, policy="fsm_gtp_failover.yaml")
        await controller.apply(PRODUCTION_CLUSTER_3)
        await wait_for(pilot, lambda: controller.golden_calls >= 1 and app.cache.count("ServiceImport") == 7, what="scenario loaded")
        last = max([iso_epoch(o["metadata"]["creationTimestamp"]) for o in app.cache.all_objects()]
                   + [a.ts for a in await controller.audit()])
        app.clock = lambda: last + 120
        for _ in range(2):
            await app.poll_golden()
        await app.poll_checks()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await wait_for(pilot, lambda: ready(app), what="view ready")
        if top_row:  # live rankings move the highlighted route: pin it for the picture
            app.screen.query_one("#main", LiveTable).move_cursor(row=0)
        app.screen.redraw()
        await pilot.pause(0.2)
    return run_before


def main_rows(n: int):
    return lambda app: app.screen.query_one("#main", LiveTable).row_count == n


@pytest.mark.parametrize("keys, ready", [
    pytest.param((), main_rows(3), id="overview"),
    pytest.param(("2",), main_rows(9), id="services"),
    pytest.param(("3",), main_rows(4), id="exports"),
    pytest.param(("4",), lambda app: app.screen.query_one("PolicyEditor").context is not None, id="policies"),
    pytest.param(("5",), lambda app: main_rows(REQUESTS)(app) and app.screen.buffer.events == len(TAP_EVENTS), id="tap"),
    pytest.param(("6",), lambda app: sum(s.count for s in app.screen.top.stats.values()) == REQUESTS and main_rows(6)(app), id="top"),
    pytest.param(("7",), lambda app: "SR" in str(app.screen.query_one("#topology").render()), id="topology"),
    pytest.param(("8",), lambda app: app.checks and main_rows(len(app.checks))(app), id="checks"),
    pytest.param(("9",), main_rows(15), id="events"),
    pytest.param(("colon", *"svcimp @cluster-2", "enter"), main_rows(3), id="resources"),
    pytest.param(("2", "down", "down", "down", "enter"),
                 lambda app: main_rows(REQUESTS)(app) and app.screen.buffer.events == len(TAP_EVENTS), id="service-detail"),
])
def test_view(snap_compare, keys, ready):
    app, controller = scenario_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=prepared(controller, *keys, ready=ready, top_row=keys == ("6",)))
