"""Built-in themes as data, user themes picked up from the config dir while the app runs."""
from __future__ import annotations

import os

import pytest

from meshtui.tui.app import MeshApp
from themes import ThemeError, builtin_themes, theme_from_yaml

from .conftest import SIZE, NotifyLog, wait_for

USER_THEME = """
name: ocean
dark: true
primary: "#0077be"
background: "#001f3f"
variables:
  production-accent: "#ff4136"
"""


def test_builtin_themes_load():
    names = {t.name for t in builtin_themes()}
    assert {"meshtui-dark", "meshtui-light", "meshtui-high-contrast", "meshtui-solarized"} <= names
    assert all(t.variables.get("production-accent") for t in builtin_themes())


@pytest.mark.parametrize("text, message", [
    ("name: x\n", "field primary: Field required"),
    ("name: x\nprimary: '#zzz'\n", "field primary: not a colour"),
    ("name: x\nprimary: red\nbogus: 1\n", "field bogus: unknown field"),
    ("- a list\n", "expected a mapping"),
    ("name: [unclosed\n", "while parsing"),
])
def test_bad_theme_files_are_named_with_the_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ThemeError) as e:
        theme_from_yaml(path)
    assert str(path) in str(e.value) and message in str(e.value)


async def test_user_theme_picked_up_without_restart(controller, tmp_path):
    themes_dir = tmp_path / "config" / "meshtui" / "themes"  # XDG_CONFIG_HOME is tmp_path/config (conftest)
    app = MeshApp(controller)
    app.theme_scan_interval = 0.2
    notes = NotifyLog()
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        assert "ocean" not in app.available_themes
        themes_dir.mkdir(parents=True)
        (themes_dir / "ocean.yaml").write_text(USER_THEME)
        await wait_for(pilot, lambda: "ocean" in app.available_themes, timeout=5, what="user theme registered")
        await pilot.press("colon", *"theme ocean", "enter")
        await pilot.pause()
        assert app.theme == "ocean" and app.accent_style == "bold #ff4136"

        path = themes_dir / "ocean.yaml"
        path.write_text(USER_THEME.replace("#ff4136", "#2ecc40"))
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
        await wait_for(pilot, lambda: app.accent_style == "bold #2ecc40", timeout=5, what="edited theme re-applied")

        (themes_dir / "broken.yaml").write_text("name: broken\nprimary: notacolour\n")
        await wait_for(pilot, lambda: any("broken.yaml" in n and "primary" in n for n in notes), timeout=5, what="error shown")
        path.unlink()
        await wait_for(pilot, lambda: app.theme == "meshtui-dark", timeout=5, what="fallback after removal")
