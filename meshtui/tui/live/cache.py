"""The TUI's local copy of every resource, kept current by one watch stream.

After a reconnect the watch lists everything again (ADDED ... BOOKMARK); objects not listed
again by the bookmark were deleted while the stream was down and are dropped then."""
from __future__ import annotations

from typing import Any, Iterable

from controller.interface import WatchEvent

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (cluster, namespace, name)


def key_of(obj: Obj) -> Key:
    md = obj["metadata"]
    return (md.get("cluster") or "", md.get("namespace") or "", md["name"])


class ResourceCache:
    def __init__(self) -> None:
        self._by_kind: dict[str, dict[Key, Obj]] = {}
        self.generation = 0  # bumped on every change; readers redraw when it moved
        self.synced = False  # the initial list (or a relist) has completed
        self._relisting: set[tuple[str, Key]] | None = None
        self._by_namespace: dict[str, dict[tuple[str, str], list[Obj]]] = {}
        self._by_namespace_generation = -1

    def begin_relist(self) -> None:
        self._relisting = set()
        self.synced = False

    def apply(self, event: WatchEvent) -> None:
        if event.type == "BOOKMARK":
            self._end_relist()
            return
        obj = event.object
        kind = obj.get("kind", "")
        objects = self._by_kind.setdefault(kind, {})
        key = key_of(obj)
        if event.type == "DELETED":
            if objects.pop(key, None) is not None:
                self.generation += 1
            return
        if self._relisting is not None:
            self._relisting.add((kind, key))
        if objects.get(key) != obj:
            objects[key] = obj
            self.generation += 1

    def _end_relist(self) -> None:
        if self._relisting is not None:
            seen = self._relisting
            for kind, objects in self._by_kind.items():
                for key in [k for k in objects if (kind, k) not in seen]:
                    del objects[key]
                    self.generation += 1
            self._relisting = None
        if not self.synced:
            self.synced = True
            self.generation += 1

    # reads -----------------------------------------------------------------------------
    def list(self, kind: str, cluster: str | None = None) -> list[Obj]:
        objects = self._by_kind.get(kind, {})
        keys = sorted(k for k in objects if cluster is None or k[0] == cluster)
        return [objects[k] for k in keys]

    def get(self, kind: str, cluster: str, namespace: str, name: str) -> Obj | None:
        return self._by_kind.get(kind, {}).get((cluster, namespace, name))

    def in_namespace(self, kind: str, cluster: str, namespace: str) -> list[Obj]:
        """Objects of a kind in one namespace of one cluster (indexed once per generation)."""
        if self._by_namespace_generation != self.generation:
            self._by_namespace, self._by_namespace_generation = {}, self.generation
        index = self._by_namespace.get(kind)
        if index is None:
            index = self._by_namespace[kind] = {}
            for (c, ns, _), obj in sorted(self._by_kind.get(kind, {}).items()):
                index.setdefault((c, ns), []).append(obj)
        return index.get((cluster, namespace), [])

    def count(self, kind: str, cluster: str | None = None) -> int:
        objects = self._by_kind.get(kind, {})
        return len(objects) if cluster is None else sum(1 for k in objects if k[0] == cluster)

    def cluster_names(self) -> list[str]:
        return sorted(k[2] for k in self._by_kind.get("Cluster", {}))

    def all_objects(self) -> Iterable[Obj]:
        for objects in self._by_kind.values():
            yield from objects.values()
