"""The last known objects of one Kubernetes-backed cluster, as its watches report them, and what
the resource core should hold for them (pure: no I/O).

Each watched type keeps the raw objects the API server sent. Types of kinds the core knows
(Service, ServiceExport, ...) are fed to it under core keys; when one kind is served by several
groups (ServiceExport in FSM's, flomesh.io and MCS's) the first group in `types` holding the
name wins. Namespaces and meshtui's own ServiceImports are kept for the writers only.
"""

from __future__ import annotations

from typing import Any

from controller.errors import InvalidResource
from controller.kube.objects import to_core
from controller.kube.resources import ResourceType
from controller.model.registry import BY_NAME
from controller.model.validation import ResourceKey

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name) in the cluster


def fed_to_core(rt: ResourceType) -> bool:
    kind = BY_NAME.get(rt.kind)
    return kind is not None and not kind.derived


class ClusterMirror:
    def __init__(self, cluster: str, types: tuple[ResourceType, ...]):
        self.cluster = cluster
        self.types = types
        self.objects: dict[ResourceType, dict[Key, Obj]] = {rt: {} for rt in types}
        self.listed: set[ResourceType] = set()  # listed at least once, or not served at all
        self.not_served: set[ResourceType] = set()
        self.refused: dict[ResourceKey, str] = {}  # objects whose body meshtui cannot use, and why
        self._by_kind: dict[str, list[ResourceType]] = {}
        for rt in types:
            if fed_to_core(rt):
                self._by_kind.setdefault(rt.kind, []).append(rt)

    # what the watches report -------------------------------------------------------------
    def put(self, rt: ResourceType, obj: Obj) -> set[ResourceKey]:
        """ADDED or MODIFIED: the core keys whose desired object may have changed."""
        key = _key(obj)
        self.objects[rt][key] = obj
        return self._touched(rt, [key])

    def remove(self, rt: ResourceType, obj: Obj) -> set[ResourceKey]:
        key = _key(obj)
        self.objects[rt].pop(key, None)
        return self._touched(rt, [key])

    def synced(self, rt: ResourceType, keys: frozenset[Key]) -> set[ResourceKey]:
        """A list completed with `keys`: whatever else was kept vanished meanwhile."""
        gone = [k for k in self.objects[rt] if k not in keys]
        for k in gone:
            del self.objects[rt][k]
        self.listed.add(rt)
        self.not_served.discard(rt)
        return self._touched(rt, gone)

    def unserved(self, rt: ResourceType) -> set[ResourceKey]:
        """The API server does not serve `rt` (its CRD is not installed): it holds nothing."""
        gone = list(self.objects[rt])
        self.objects[rt].clear()
        self.listed.add(rt)
        self.not_served.add(rt)
        return self._touched(rt, gone)

    # what the core should hold -----------------------------------------------------------
    def core_key(self, rt: ResourceType, key: Key) -> ResourceKey:
        namespace, name = key
        if not BY_NAME[rt.kind].namespaced:
            return (rt.kind, "", "", name)
        return (rt.kind, self.cluster, namespace, name)

    def desired(self, core_key: ResourceKey) -> Obj | None:
        """The core object for `core_key`, None when the cluster holds none meshtui can use."""
        kind, _, namespace, name = core_key
        self.refused.pop(core_key, None)
        for rt in self._by_kind.get(kind, ()):
            obj = self.objects[rt].get((namespace if rt.namespaced else "", name))
            if obj is None:
                continue
            try:
                return to_core(self.cluster, obj)
            except InvalidResource as e:
                self.refused[core_key] = e.message
        return None

    def complete(self, kind: str) -> bool:
        """Every type of `kind` was listed: the mirror knows all the cluster holds of it."""
        return all(rt in self.listed for rt in self._by_kind.get(kind, ()))

    def kinds(self) -> tuple[str, ...]:
        return tuple(self._by_kind)

    def core_keys(self, kind: str) -> set[ResourceKey]:
        return {self.core_key(rt, k) for rt in self._by_kind.get(kind, ()) for k in self.objects[rt]}

    def owns(self, obj: Obj) -> bool:
        """Whether a core object is this cluster's (namespaced objects by metadata.cluster; a
        Link by the cluster it starts from)."""
        if obj["kind"] == "Link":
            return (obj.get("spec") or {}).get("sourceCluster") == self.cluster
        return obj["metadata"].get("cluster") == self.cluster

    def terminating(self, namespace: str, namespaces: ResourceType) -> bool:
        ns = self.objects.get(namespaces, {}).get(("", namespace))
        return ns is not None and (ns.get("status") or {}).get("phase") == "Terminating"

    def _touched(self, rt: ResourceType, keys: list[Key]) -> set[ResourceKey]:
        if not fed_to_core(rt):
            return set()
        return {self.core_key(rt, k) for k in keys}


def _key(obj: Obj) -> Key:
    md = obj.get("metadata") or {}
    return md.get("namespace") or "", md.get("name", "")
