"""What an API server means by its verbs, without HTTP: objects, one global revision counter
(like etcd's), a change history that can be compacted, and change listeners for watches."""

from __future__ import annotations

import copy
import ipaddress
import re
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from tests.kubeapi import errors
from tests.kubeapi.patches import apply_patch
from tests.kubeapi.resources import NAMESPACES, SERVED, ServedResource
from tests.kubeapi.selectors import Predicate

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")


@dataclass(frozen=True, slots=True)
class Change:
    revision: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: ServedResource
    obj: Obj
    old: Obj | None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def _without_revision(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["metadata"].pop("resourceVersion", None)
    return out


def watch_event(
    change: Change, resource: ServedResource, namespace: str | None, matches: Predicate
) -> tuple[str, Obj] | None:
    """The event a watch with these filters sees for `change`, if any. An object that stops
    (starts) matching a label selector is seen as DELETED (ADDED), as from the real watch cache."""
    if change.resource is not resource:
        return None
    if namespace is not None and change.obj["metadata"].get("namespace") != namespace:
        return None
    now = matches(change.obj)
    before = change.old is not None and matches(change.old)
    if change.type == "ADDED":
        return ("ADDED", change.obj) if now else None
    if change.type == "DELETED":
        return ("DELETED", change.obj) if now else None
    if now and before:
        return "MODIFIED", change.obj
    if now:
        return "ADDED", change.obj
    if before:
        return "DELETED", change.obj
    return None


class Store:
    def __init__(self, history_limit: int = 100_000):
        self.revision = 0
        self.compacted = 0  # a watch from a revision below this one gets 410 Gone
        self._history_limit = history_limit
        self._objects: dict[ServedResource, dict[Key, Obj]] = {r: {} for r in SERVED}
        self._history: list[Change] = []
        self._listeners: list[Callable[[Change], None]] = []
        self._next_cluster_ip = 10

    # reads ---------------------------------------------------------------------------------
    def select(self, resource: ServedResource, namespace: str | None, matches: Predicate) -> list[Obj]:
        items = self._objects[resource]
        return [
            copy.deepcopy(obj)
            for key, obj in sorted(items.items())
            if (namespace is None or key[0] == namespace) and matches(obj)
        ]

    def get(self, resource: ServedResource, namespace: str | None, name: str) -> Obj:
        return copy.deepcopy(self._existing(resource, namespace, name))

    def changes_since(self, revision: int) -> list[Change]:
        if revision < self.compacted:
            raise errors.expired(revision, self.compacted)
        return [c for c in self._history if c.revision > revision]

    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def compact(self) -> int:
        """Forget the history up to now, as etcd compaction does; returns the compacted revision."""
        self.compacted = self.revision
        self._history.clear()
        return self.compacted

    # writes --------------------------------------------------------------------------------
    def create(self, resource: ServedResource, namespace: str | None, body: Any) -> Obj:
        obj = self._decode(resource, body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            meta["name"] = meta["generateName"] + suffix
        name = meta.get("name") or ""
        self._check_name(resource, name)
        self._place(resource, namespace, obj)
        if (obj["metadata"].get("namespace", ""), name) in self._objects[resource]:
            raise errors.already_exists(resource, name)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now())
        for transient in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(transient, None)
        if not resource.builtin:
            meta["generation"] = 1
        if resource.status_subresource:
            obj.pop("status", None)
        self._default(resource, obj)
        return self._commit("ADDED", resource, obj, None)

    def replace(
        self, resource: ServedResource, namespace: str | None, name: str, body: Any, subresource: str | None
    ) -> Obj:
        new = self._decode(resource, body)
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if namespace is not None and meta.get("namespace", namespace) != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        old = self._existing(resource, namespace, name)
        sent = meta.get("resourceVersion")
        if not sent and not resource.builtin:
            raise errors.invalid(
                resource, name, "metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update"
            )
        return self._update(resource, old, new, sent, subresource)

    def patch(
        self,
        resource: ServedResource,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str | None,
    ) -> Obj:
        old = self._existing(resource, namespace, name)
        new = apply_patch(resource, content_type, copy.deepcopy(old), patch)
        if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
            raise errors.bad_request("the patch removed the object's metadata")
        sent = new["metadata"].get("resourceVersion")
        return self._update(resource, old, new, sent, subresource)

    def delete(self, resource: ServedResource, namespace: str | None, name: str, options: Any) -> Obj:
        obj = self._existing(resource, namespace, name)
        pre = (options.get("preconditions") or {}) if isinstance(options, dict) else {}
        for field, actual in (("uid", obj["metadata"]["uid"]), ("resourceVersion", obj["metadata"]["resourceVersion"])):
            wanted = pre.get(field)
            if wanted and wanted != actual:
                label = "UID" if field == "uid" else "ResourceVersion"
                raise errors.conflict(
                    resource,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}",
                )
        if resource is NAMESPACES:
            for other, items in self._objects.items():
                for key in [k for k in sorted(items) if other.namespaced and k[0] == name]:
                    self._remove(other, items[key])
        return self._remove(resource, obj)

    # internals -----------------------------------------------------------------------------
    def _existing(self, resource: ServedResource, namespace: str | None, name: str) -> Obj:
        obj = self._objects[resource].get((namespace or "", name))
        if obj is None:
            raise errors.not_found(resource, name)
        return obj

    @staticmethod
    def _decode(resource: ServedResource, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the request body for {resource.qualified} must be a JSON object")
        obj = copy.deepcopy(body)
        api_version, kind = obj.setdefault("apiVersion", resource.group_version), obj.setdefault("kind", resource.kind)
        if (api_version, kind) != (resource.group_version, resource.kind):
            addressed = f"{resource.group_version}, Kind={resource.kind}"
            raise errors.bad_request(f"the body is {api_version}, Kind={kind} but the request addresses {addressed}")
        if not isinstance(obj.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        return obj

    @staticmethod
    def _check_name(resource: ServedResource, name: str) -> None:
        if not name:
            raise errors.invalid(resource, name, "metadata.name", "Required value: name or generateName is required")
        label = resource.plural in ("namespaces", "services")
        pattern, limit = (_DNS_LABEL, 63) if label else (_DNS_SUBDOMAIN, 253)
        if len(name) > limit or not pattern.match(name):
            what = "RFC 1123 label" if label else "RFC 1123 subdomain"
            raise errors.invalid(
                resource,
                name,
                "metadata.name",
                f'Invalid value: "{name}": a lowercase {what} must consist of '
                "lower case alphanumeric characters or '-'",
            )

    def _place(self, resource: ServedResource, namespace: str | None, obj: Obj) -> None:
        meta = obj["metadata"]
        if not resource.namespaced:
            meta.pop("namespace", None)
            return
        if namespace is None:
            raise errors.bad_request(f"{resource.qualified} is namespaced: create it under /namespaces/<namespace>/")
        if meta.setdefault("namespace", namespace) != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if ("", namespace) not in self._objects[NAMESPACES]:
            raise errors.not_found(NAMESPACES, namespace)

    def _default(self, resource: ServedResource, obj: Obj) -> None:
        if resource is NAMESPACES:
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif resource.plural == "services" and resource.builtin:
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if not spec.get("clusterIP"):
                spec["clusterIP"] = str(_SERVICE_CIDR[self._next_cluster_ip])
                self._next_cluster_ip += 1
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
            obj["status"] = {"loadBalancer": {}}

    def _update(self, resource: ServedResource, old: Obj, new: Obj, sent: str | None, subresource: str | None) -> Obj:
        name = old["metadata"]["name"]
        if sent and sent != old["metadata"]["resourceVersion"]:
            raise errors.conflict(resource, name, errors.STALE)
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
        else:
            merged = new
            for immutable in ("name", "namespace", "uid", "creationTimestamp", "generation"):
                if immutable in old["metadata"]:
                    merged["metadata"][immutable] = old["metadata"][immutable]
            if resource.status_subresource:
                merged.pop("status", None)
                if "status" in old:
                    merged["status"] = copy.deepcopy(old["status"])
            if resource.plural == "services" and resource.builtin:
                spec = merged.setdefault("spec", {})
                for allocated in ("clusterIP", "clusterIPs"):
                    if not spec.get(allocated) and allocated in old.get("spec", {}):
                        spec[allocated] = old["spec"][allocated]
            if not resource.builtin and merged.get("spec") != old.get("spec"):
                merged["metadata"]["generation"] = old["metadata"]["generation"] + 1
        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if _without_revision(merged) == _without_revision(old):
            return copy.deepcopy(old)  # a no-op write neither bumps the revision nor wakes watches
        return self._commit("MODIFIED", resource, merged, old)

    def _remove(self, resource: ServedResource, obj: Obj) -> Obj:
        del self._objects[resource][_key(obj)]
        return self._commit("DELETED", resource, copy.deepcopy(obj), obj)

    def _commit(self, kind: str, resource: ServedResource, obj: Obj, old: Obj | None) -> Obj:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        if kind != "DELETED":
            self._objects[resource][_key(obj)] = obj
        change = Change(self.revision, kind, resource, copy.deepcopy(obj), old)
        self._history.append(change)
        if len(self._history) > self._history_limit:
            dropped = self._history[: len(self._history) // 2]
            del self._history[: len(dropped)]
            self.compacted = dropped[-1].revision
        for listener in list(self._listeners):
            listener(change)
        return copy.deepcopy(obj)
