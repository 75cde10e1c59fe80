"""The meshtui Textual app: one merged, live view of every cluster, reached only through
`self.controller` (embedded, attached or over SSH alike).

Live data flows one way: the watch stream, the golden-metrics poll and the checks poll write into
bounded buffers on the app (cache, golden, checks); each view redraws from them on its own fixed
tick. Nothing here is process-global, so one process may run many apps (one per SSH session)."""
from __future__ import annotations

import gc
import os
import time
from functools import partial
from typing import Any, Callable

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.driver import Driver
from textual.keys import _character_to_key  # the terminal driver's own mapping
from textual.widgets import Input, TextArea

from controller.errors import MeshError
from controller.interface import CheckResult, Controller
from themes import DEFAULT_THEME, TCSS_PATH, UserThemes, builtin_themes, user_themes_dir

from .live.cache import ResourceCache
from .live.golden import GoldenStore
from .live.streams import follow_watch
from .logic.clusters import production_names
from .logic.commands import CommandError, parse_command
from .palette import KindCommands, ResourceCommands, ViewCommands
from .screens.base import MeshScreen
from .screens.checks import ChecksScreen
from .screens.events import EventsScreen
from .screens.exports import ExportsScreen
from .screens.help import HelpScreen
from .screens.overview import OverviewScreen
from .screens.policies import PoliciesScreen
from .screens.resources import ResourcesScreen
from .screens.services import ServicesScreen
from .screens.tap import TapScreen
from .screens.top import TopScreen
from .screens.topology import TopologyScreen
from .widgets.chrome import VIEWS

Obj = dict[str, Any]
GOLDEN_INTERVAL = 1.0
CHECKS_INTERVAL = 5.0
THEME_SCAN_INTERVAL = 2.0


_heap_frozen = False


def freeze_heap_once() -> None:
    """Move every object alive once the first view has its data (the controller's state, the
    resource cache, the app) out of the cyclic garbage collector's reach, once per process: a full
    collection walks them all, and over a 100,000-service federation that stalls the event loop
    (keys, frames) for hundreds of milliseconds every few seconds. They are still freed when no
    longer referenced; only cycles among them are not collected, a bounded, one-off cost."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.freeze()


class MeshApp(App[None]):
    TITLE = "meshtui"
    CSS_PATH = str(TCSS_PATH)
    MODES = {
        "overview": OverviewScreen, "services": ServicesScreen, "exports": ExportsScreen,
        "policies": PoliciesScreen, "tap": TapScreen, "top": TopScreen, "topology": TopologyScreen,
        "checks": ChecksScreen, "events": EventsScreen, "resources": ResourcesScreen,
    }
    DEFAULT_MODE = "overview"
    COMMANDS = App.COMMANDS | {ViewCommands, KindCommands, ResourceCommands}
    # Priority bindings act as the app reads the key, before the keys read with it reach the focused
    # widget: the rest of a pasted `:svc<enter>` then lands in the command line. check_action hands
    # these keys to text fields and dialogs.
    BINDINGS = [
        Binding("colon", "command_mode", "Command", key_display=":", priority=True),
        Binding("slash", "filter_mode", "Filter", key_display="/", priority=True),
        Binding("question_mark", "help", "Help", key_display="?", priority=True),
        *(Binding(str(i), f"open_view('{name}')", label, show=False, priority=True) for i, (name, label) in enumerate(VIEWS, 1)),
    ]
    VIEW_KEY_ACTIONS = frozenset({"command_mode", "filter_mode", "help", "open_view"})

    def __init__(self, controller: Controller, *, read_only: bool = False, user: str = "",
                 driver_class: type[Driver] | None = None) -> None:
        super().__init__(driver_class=driver_class)
        self.controller = controller
        self.read_only = read_only or bool(getattr(controller, "read_only", False))
        self.user = user or os.environ.get("USER", "")
        self.cache = ResourceCache()
        self.golden = GoldenStore()
        self.checks: list[CheckResult] = []
        self.checks_version = 0
        self.connection_state = "connecting"
        self.metrics_error = ""
        self.accent_style = ""
        self.failure_style = ""
        self.style_version = 0
        self.clock: Callable[[], float] = time.time  # ages are shown relative to it
        self.golden_interval = GOLDEN_INTERVAL
        self.theme_scan_interval = THEME_SCAN_INTERVAL
        self.user_themes = UserThemes(user_themes_dir())
        self._production: tuple[int, frozenset[str]] = (-1, frozenset())
        for theme in builtin_themes():
            self.register_theme(theme)
        self.theme = DEFAULT_THEME

    # lifecycle -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.scan_user_themes()
        self.run_worker(partial(follow_watch, self.controller, self.cache, self.set_connection_state), group="watch", exclusive=True)
        self.set_interval(self.golden_interval, self.poll_golden)
        self.set_interval(CHECKS_INTERVAL, self.poll_checks)
        self.set_interval(self.theme_scan_interval, self.scan_user_themes)
        self.call_later(self.poll_golden)
        self.call_later(self.poll_checks)

    async def poll_golden(self) -> None:
        try:
            rows = await self.controller.golden("10s")
        except Exception as e:  # keep showing the last figures; the Overview says why
            self.metrics_error = f"metrics unavailable: {type(e).__name__}: {e}"
            return
        self.metrics_error = ""
        self.golden.update(rows)

    async def poll_checks(self) -> None:
        try:
            self.checks = await self.controller.checks()
        except Exception as e:
            self.checks = [CheckResult("meshtui", "controller answers checks", False, f"{type(e).__name__}: {e}")]
        self.checks_version += 1

    def set_connection_state(self, state: str) -> None:
        if state == "live":
            freeze_heap_once()
        if state != self.connection_state:
            self.connection_state = state
            if isinstance(self.screen, MeshScreen):
                self.screen.refresh_header()

    # themes --------------------------------------------------------------------------------
    def watch_theme(self, name: str) -> None:
        theme = self.current_theme
        color = theme.variables.get("production-accent") or theme.warning or "yellow"
        self.accent_style = f"bold {color}"
        self.failure_style = f"bold {theme.error or 'red'}"
        self.style_version += 1

    def scan_user_themes(self) -> None:
        themes, errors, gone = self.user_themes.scan()
        for theme in themes:
            self.register_theme(theme)
        for message in errors:
            self.notify(message, title="theme not loaded", severity="error", timeout=6)
        for name in gone:
            self.unregister_theme(name)
        if self.theme in gone:
            self.theme = DEFAULT_THEME
        elif any(t.name == self.theme for t in themes):
            self.refresh_css(animate=False)  # the current theme's file changed: repaint with it
            self.watch_theme(self.theme)

    def set_theme(self, name: str) -> None:
        if name not in self.available_themes:
            self.notify(f"unknown theme {name!r}; known: {', '.join(sorted(self.available_themes))}", severity="error")
            return
        self.theme = name

    # shared state --------------------------------------------------------------------------
    def production(self) -> frozenset[str]:
        """Names of production clusters (their rows get the accent)."""
        generation, names = self._production
        if generation != self.cache.generation:
            names = production_names(self.cache.list("Cluster"))
            self._production = (self.cache.generation, names)
        return names

    # navigation ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.VIEW_KEY_ACTIONS:
            return isinstance(self.screen, MeshScreen) and not isinstance(self.focused, (Input, TextArea))
        return True

    async def action_open_view(self, view: str) -> None:
        await self.open_view(view)

    async def open_view(self, view: str, kind: str = "", cluster: str | None = None) -> MeshScreen:
        await self.switch_mode(view)
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        screen = self.screen
        assert isinstance(screen, MeshScreen)
        if kind and isinstance(screen, ResourcesScreen):
            screen.set_kind(kind)
        if cluster is not None:
            screen.set_cluster(cluster)
        return screen

    async def run_command(self, text: str) -> None:
        try:
            cmd = parse_command(text, self.cache.cluster_names())
        except CommandError as e:
            self.notify(str(e), title="command", severity="error", timeout=5)
            return
        if cmd.action == "quit":
            self.exit()
        elif cmd.action == "theme":
            self.set_theme(cmd.arg)
        elif cmd.action == "cluster":
            if isinstance(self.screen, MeshScreen):
                self.screen.set_cluster(cmd.cluster)
        else:
            await self.open_view(cmd.view, cmd.kind, cmd.cluster)

    async def on_event(self, event: events.Event) -> None:
        # The command line's keys are handled here, as each is read, not queued for its input
        # widget: a line typed in one burst (a paste, `tmux send-keys ':svc' Enter '/api' Enter`)
        # then ends, runs its command and hands the next keys to the new view, in order.
        if isinstance(event, events.Key) and not event.is_forwarded and isinstance(self.screen, MeshScreen):
            screen = self.screen
            bar = screen.command_bar
            if bar.display and self.focused is bar.input:
                if event.key == "enter":
                    await screen.command_entered()
                    return
                if event.key == "escape":
                    screen.command_cancelled()
                    return
                if await bar.edit(event):
                    return
        elif isinstance(event, events.Paste) and isinstance(self.screen, MeshScreen) \
                and not isinstance(self.focused, (Input, TextArea)) and event.text[:1] in (":", "/"):
            # A pasted command or filter line (bracketed paste) is typed, key by key.
            for ch in event.text.replace("\r\n", "\n"):
                key = "enter" if ch in "\r\n" else _character_to_key(ch)
                self.post_message(events.Key(key, None if key == "enter" else ch))
            return
        await super().on_event(event)

    def action_command_mode(self) -> None:
        if isinstance(self.screen, MeshScreen):
            self.screen.open_command_bar("command")

    def action_filter_mode(self) -> None:
        if isinstance(self.screen, MeshScreen):
            self.screen.open_command_bar("filter")

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.screen))

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """As App.notify, but messages are literal text by default: they carry resource names,
        paths (`spec.targets[0]`) and controller errors, not markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # writes --------------------------------------------------------------------------------
    def refuse_write(self, what: str) -> bool:
        """True (and a notification) when writes are not allowed in this session."""
        if self.read_only:
            self.notify(f"read-only session: {what} refused", title="read-only", severity="warning", timeout=4)
        return self.read_only

    def on_key(self, event: events.Key) -> None:
        # Write bindings are hidden in read-only mode, so their keys arrive here: say why nothing happens.
        if self.read_only and isinstance(self.screen, MeshScreen):
            what = self.screen.write_keys().get(event.key)
            if what:
                event.stop()
                self.refuse_write(what)

    async def apply_objects(self, docs: list[Obj], what: str) -> bool:
        if self.refuse_write(what):
            return False
        try:
            await self.controller.apply(docs, user=self.user)
        except MeshError as e:
            self.notify(e.message, title=f"{what} refused", severity="error", timeout=8)
            return False
        return True

    async def delete_object(self, obj: Obj) -> bool:
        md = obj["metadata"]
        if self.refuse_write("delete"):
            return False
        try:
            await self.controller.delete(obj["kind"], md["name"], cluster=md.get("cluster"), namespace=md.get("namespace"), user=self.user)
        except MeshError as e:
            self.notify(e.message, title="delete refused", severity="error", timeout=8)
            return False
        self.notify(f"deleted {obj['kind']} {md['name']}")
        return True


def run_tui(controller: Controller, *, read_only: bool = False, user: str = "",
            driver_class: type[Driver] | None = None, size: tuple[int, int] | None = None) -> None:
    """Run the TUI until the user quits (blocking; starts its own event loop). From async code,
    use `await MeshApp(controller, ...).run_async()` on the controller's loop instead."""
    MeshApp(controller, read_only=read_only, user=user, driver_class=driver_class).run(size=size)
