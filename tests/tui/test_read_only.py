"""Read-only sessions (viewers, --readonly): every write is hidden from footer and help, and
refused with a message when invoked anyway; nothing reaches the controller."""
from __future__ import annotations

import pytest

from controller.embedded import EmbeddedController
from meshtui.tui.app import MeshApp
from meshtui.tui.screens.help import HelpScreen
from tests.support import apply_reference

from .conftest import SIZE, NotifyLog, table_rows, wait_rows

WRITES = {  # view key -> keys of its write actions
    "2": ["e", "ctrl+d"],
    "3": ["x", "r", "e", "ctrl+d"],
    "4": ["ctrl+s", "n", "e", "ctrl+d"],
}


async def snapshot_of(controller) -> list:
    return [(o["kind"], o["metadata"].get("cluster"), o["metadata"]["name"], o["metadata"]["resourceVersion"])
            for kind in ("svc", "svcexp", "svcimp", "gtp") for o in await controller.list(kind)]


@pytest.mark.parametrize("how", ["flag", "controller"])
async def test_read_only_refuses_every_write(tmp_path, how):
    controller = await EmbeddedController.open(tmp_path / "state")
    await apply_reference(controller, policy="fsm_gtp_failover.yaml")
    before = await snapshot_of(controller)
    if how == "controller":
        controller.read_only = True  # a viewer's controller: the app follows it
    app = MeshApp(controller, read_only=(how == "flag"))
    try:
        notes = NotifyLog()
        async with app.run_test(size=SIZE, message_hook=notes) as pilot:
            assert app.read_only
            assert "READ-ONLY" in str(app.screen.query_one("MeshHeader").render())
            for view, keys in WRITES.items():
                await pilot.press(view)
                await wait_rows(pilot, lambda rows: len(rows) > 0)
                footer_keys = {b.binding.action for b in app.screen.active_bindings.values()}
                assert not footer_keys & set(app.screen.WRITE_ACTIONS), f"write actions shown in view {view}"
                for key in keys:
                    count = len(notes)
                    await pilot.press(key)
                    await pilot.pause()
                    assert len(notes) == count + 1, f"{key} in view {view} was not refused"
                    assert "read-only session" in notes[-1]
                    assert app.screen.__class__.__name__.endswith("Screen") and not app.screen.is_modal
                for action in app.screen.WRITE_ACTIONS:  # invoked anyway (palette, mouse, a future binding)
                    await app.screen.run_action(action)
                    await pilot.pause()
                    assert not app.screen.is_modal
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            listed = {r[1] for r in table_rows(app, "#help-keys")}
            assert "Describe" in listed and not listed & {"Edit", "Delete", "Apply policy", "New policy"}
    finally:
        await controller.close()
    assert await snapshot_of(controller) == before
    assert [a.action for a in await controller.audit()] == ["apply"] * 14  # the scenario's applies, nothing more
