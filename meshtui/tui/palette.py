"""Command palette providers (ctrl+p): go to a view, list any kind, describe any resource.
Themes come from Textual's own "Change theme" command, which lists meshtui's and the user's."""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from controller.model import KINDS

from .logic.describe import describe
from .screens.text_view import TextViewScreen
from .widgets.chrome import VIEWS

if TYPE_CHECKING:
    from .app import MeshApp


class ViewCommands(Provider):
    def _commands(self) -> list[tuple[str, str, str]]:
        return [(f"View: {label}", name, f"switch to {label} (key {i})") for i, (name, label) in enumerate(VIEWS, 1)]

    async def discover(self) -> Hits:
        app: MeshApp = self.app  # type: ignore[assignment]
        for text, name, help_text in self._commands():
            yield DiscoveryHit(text, partial(app.open_view, name), help=help_text)

    async def search(self, query: str) -> Hits:
        app: MeshApp = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        for text, name, help_text in self._commands():
            if (score := matcher.match(text)) > 0:
                yield Hit(score, matcher.highlight(text), partial(app.open_view, name), help=help_text)


class KindCommands(Provider):
    async def search(self, query: str) -> Hits:
        app: MeshApp = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        for kind in KINDS:
            text = f"Resources: {kind.plural}"
            if (score := matcher.match(text)) > 0:
                yield Hit(score, matcher.highlight(text), partial(app.open_view, "resources", kind.name),
                          help=f"the table of every {kind.name} (:raw {kind.short_names[0] if kind.short_names else kind.plural})")


class ResourceCommands(Provider):
    async def search(self, query: str) -> Hits:
        app: MeshApp = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        for obj in list(app.cache.all_objects()):
            md = obj["metadata"]
            where = f"{md['namespace']}/{md['name']}" if md.get("namespace") else md["name"]
            text = f"Describe {obj['kind']} {where}" + (f" @{md['cluster']}" if md.get("cluster") else "")
            if (score := matcher.match(text)) > 0:
                yield Hit(score, matcher.highlight(text), partial(self._describe, text, obj))

    def _describe(self, title: str, obj: dict) -> None:
        self.app.push_screen(TextViewScreen(title, describe(obj)))
