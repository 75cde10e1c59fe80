"""The `:` command line of k9s: a view or a kind (any alias), an optional `@cluster` suffix.

`:svc`, `:gtp @cluster-2`, `:ep @all`, `:raw svc` (the generic table even where a richer view
exists), `:@cluster-3` (only change the cluster of the current view), `:theme NAME`, `:q`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

from controller.model import KINDS, lookup

VIEW_ALIASES: dict[str, str] = {
    "overview": "overview", "ov": "overview", "home": "overview",
    "tap": "tap",
    "top": "top",
    "topology": "topology", "topo": "topology", "graph": "topology",
    "checks": "checks", "check": "checks", "health": "checks",
    "events": "events", "event": "events", "audit": "events", "log": "events",
}
# Kinds whose resources have a richer view than the generic table.
VIEW_OF_KIND = {"Cluster": "overview", "Service": "services", "ServiceExport": "exports", "GlobalTrafficPolicy": "policies"}
RAW_WORDS = ("raw", "res", "get")
QUIT_WORDS = ("q", "q!", "quit", "exit")
ALL_CLUSTERS = ("all", "*", "")


class CommandError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    action: str  # view | cluster | theme | quit
    view: str = ""  # the mode to show
    kind: str = ""  # Kind.name shown by a resource view
    cluster: str | None = None  # None keeps the view's selection; "" selects every cluster
    arg: str = ""


def suggestions() -> list[str]:
    """Every word the command line understands, for completion."""
    words = set(VIEW_ALIASES) | set(QUIT_WORDS) | {"theme"}
    for kind in KINDS:
        words |= {kind.name.lower(), kind.plural, *kind.short_names}
    return sorted(words)


def parse_command(text: str, clusters: Collection[str]) -> Command:
    words = text.strip().lstrip(":").split()
    cluster: str | None = None
    rest: list[str] = []
    for w in words:
        if w.startswith("@"):
            name = w[1:]
            if name in ALL_CLUSTERS:
                cluster = ""
            elif name in clusters:
                cluster = name
            else:
                raise CommandError(f"unknown cluster {name!r}; members: {', '.join(sorted(clusters)) or 'none'}")
        else:
            rest.append(w)
    if not rest:
        if cluster is None:
            raise CommandError("empty command; try :svc, :gtp @cluster-2, :tap, :q")
        return Command("cluster", cluster=cluster)
    word, args = rest[0].lower(), rest[1:]
    if word in QUIT_WORDS:
        return Command("quit")
    if word == "theme":
        if not args:
            raise CommandError("theme needs a name, e.g. :theme meshtui-light")
        return Command("theme", arg=args[0])
    if word in RAW_WORDS:
        if not args:
            raise CommandError(f":{word} needs a kind, e.g. :{word} svc")
        kind = _kind(args[0])
        return Command("view", view="resources", kind=kind, cluster=cluster)
    if args:
        raise CommandError(f"unexpected {' '.join(args)!r} after {word!r}")
    if word in VIEW_ALIASES:
        return Command("view", view=VIEW_ALIASES[word], cluster=cluster)
    kind = _kind(word)
    return Command("view", view=VIEW_OF_KIND.get(kind, "resources"), kind=kind, cluster=cluster)


def _kind(word: str) -> str:
    kind = lookup(word)
    if kind is None:
        views = ", ".join(sorted(set(VIEW_ALIASES.values())))
        raise CommandError(f"unknown command or kind {word!r}; views: {views}; kinds: {', '.join(k.plural for k in KINDS)}")
    return kind.name
