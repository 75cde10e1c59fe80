"""Themes from YAML: the built-in ones beside this file and the user's in
$XDG_CONFIG_HOME/meshtui/themes/*.yaml, rescanned while the app runs.

A theme file holds Textual's Theme fields (name, primary, ... , dark, variables); the variable
`production-accent` colours every row of a production cluster."""
from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from textual.color import Color, ColorParseError
from textual.theme import Theme

BUILTIN_DIR = Path(__file__).parent
TCSS_PATH = BUILTIN_DIR / "meshtui.tcss"
DEFAULT_THEME = "meshtui-dark"
COLOR_FIELDS = ("primary", "secondary", "accent", "warning", "error", "success", "foreground", "background", "surface", "panel", "boost")


class ThemeError(ValueError):
    pass


class ThemeFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    dark: bool = True
    primary: str
    secondary: str | None = None
    accent: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    boost: str | None = None
    luminosity_spread: float = Field(default=0.15, ge=0, le=1)
    text_alpha: float = Field(default=0.95, ge=0, le=1)
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator(*COLOR_FIELDS)
    @classmethod
    def _color(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                Color.parse(v)
            except ColorParseError as e:
                raise ValueError(f"not a colour: {e}") from None
        return v


def theme_from_yaml(path: Path) -> Theme:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ThemeError(f"{path}: {e}") from None
    if not isinstance(data, dict):
        raise ThemeError(f"{path}: expected a mapping of theme fields")
    try:
        spec = ThemeFile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        raise ThemeError(f"{path}: field {field}: {msg}") from None
    return Theme(**spec.model_dump())


def builtin_themes() -> list[Theme]:
    return [theme_from_yaml(p) for p in sorted(BUILTIN_DIR.glob("*.yaml"))]


def user_themes_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "meshtui" / "themes"


class UserThemes:
    """Rescans one directory; each scan returns only what changed since the last."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seen: dict[Path, tuple[float, str | None]] = {}  # path -> (mtime, theme name or None if broken)

    def scan(self) -> tuple[list[Theme], list[str], list[str]]:
        """(new or changed themes, errors, names of themes whose file is gone)."""
        try:
            paths = sorted(p for p in self.directory.iterdir() if p.suffix in (".yaml", ".yml"))
        except OSError:
            paths = []
        themes, errors = [], []
        for path in paths:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self._seen.get(path, (None,))[0] == mtime:
                continue
            try:
                theme = theme_from_yaml(path)
            except ThemeError as e:
                errors.append(str(e))
                self._seen[path] = (mtime, None)
                continue
            self._seen[path] = (mtime, theme.name)
            themes.append(theme)
        gone = [name for path, (_, name) in self._seen.items() if path not in paths and name]
        self._seen = {p: v for p, v in self._seen.items() if p in paths}
        return themes, errors, gone
