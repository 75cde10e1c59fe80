"""Fixtures of the TUI tests: the reference scenario in a real EmbeddedController, optionally
with recorded traffic, and a helper that waits for the app's fixed-tick redraws."""
from __future__ import annotations

import time
from typing import Callable

import pytest
from textual.notifications import Notify

from controller.embedded import EmbeddedController
from meshtui.tui.app import MeshApp
from tests.support import apply_reference

from .recorded import RecordedController

SIZE = (120, 36)
# In-cluster-2 backends for scenario step 3 (DESIGN section 8), so ActiveActive has a local group.
CLUSTER2_HTTPBIN = """
apiVersion: meshtui.io/v1alpha1
kind: Workload
metadata: {name: httpbin, namespace: httpbin}
spec: {app: echo, replicas: 1, port: 8080, message: "Hi, I am from cluster-2!", labels: {app: pipy}}
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: httpbin}
spec:
  selector: {app: pipy}
  ports: [{port: 8080, targetPort: 8080, protocol: TCP}]
"""


@pytest.fixture(autouse=True)
def _no_user_themes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("USER", "tester")


@pytest.fixture
async def controller(tmp_path):
    c = await EmbeddedController.open(tmp_path / "state")
    await apply_reference(c, policy="fsm_gtp_failover.yaml")
    yield c
    await c.close()


@pytest.fixture
async def recorded(controller):
    return RecordedController(controller)


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def table_rows(app: MeshApp, selector: str = "#main") -> list[tuple[str, ...]]:
    """The text of every row of a table of the current screen, in display order."""
    table = app.screen.query_one(selector)
    return [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


def column_labels(app: MeshApp, selector: str = "#main") -> list[str]:
    table = app.screen.query_one(selector)
    return [str(c.label) for c in table.ordered_columns]


async def wait_rows(pilot, predicate: Callable[[list[tuple[str, ...]]], bool], selector: str = "#main", timeout: float = 5.0) -> list[tuple[str, ...]]:
    await wait_for(pilot, lambda: predicate(table_rows(pilot.app, selector)), timeout, f"rows of {selector}")
    return table_rows(pilot.app, selector)


class NotifyLog(list):
    """Every notification the app posts (a run_test message hook); the toasts themselves expire."""

    def __call__(self, message) -> None:
        if isinstance(message, Notify):
            self.append(message.notification.message)


@pytest.fixture(autouse=True)
def _fixed_loopback_base(monkeypatch):
    """The TUI tests run no data plane: pin the address range so screens are the same on every machine."""
    monkeypatch.setenv("MESHTUI_LOOPBACK_BASE", "127.0")
