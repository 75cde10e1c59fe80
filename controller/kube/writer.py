"""The controller's writes into one Kubernetes cluster: create-or-update of derived objects
(ServiceImports) and of users' objects, and status writes, each a read-modify-replace guarded by
resourceVersion and retried a bounded number of times on 409 Conflict (a user's write that names
the version it read is checked again on every retry by its precondition). Missing namespaces are
created."""

from __future__ import annotations

import asyncio
import copy
import functools
from concurrent.futures import Executor
from typing import Any, Callable, TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from controller.errors import Conflict, Forbidden, InvalidResource, MeshError, NotFound, Unauthorized, Unavailable
from controller.kube.resources import FSM_GROUP, NAMESPACES, ResourceType, resource_for
from controller.kube.rest import KubeRest, describe_error, error_status, not_served

Obj = dict[str, Any]
T = TypeVar("T")
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "meshtui"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
WRITTEN_BY_ANNOTATION = "meshtui.io/written-by"  # the controller (leader identity) that wrote it last
_OWNED_METADATA = ("labels", "annotations")
# Called in the worker thread with the object the server holds (None: absent) before each
# attempt; raises Conflict to abandon the write.
Precondition = Callable[[Obj | None], None]


def service_import(
    namespace: str,
    name: str,
    spec: Obj,
    *,
    group: str = FSM_GROUP,
    labels: dict[str, str] | None = None,
    written_by: str = "",
) -> Obj:
    """A ServiceImport manifest as meshtui derives it, labelled as managed by meshtui."""
    metadata: Obj = {"name": name, "namespace": namespace, "labels": {**(labels or {}), MANAGED_BY_LABEL: MANAGED_BY}}
    if written_by:
        metadata["annotations"] = {WRITTEN_BY_ANNOTATION: written_by}
    return {"apiVersion": f"{group}/v1alpha1", "kind": "ServiceImport", "metadata": metadata, "spec": spec}


def updated(current: Obj, desired: Obj) -> Obj:
    """`current` with what `desired` owns: every top-level field but metadata and status, and
    the labels and annotations it names (others' labels are kept)."""
    out = copy.deepcopy(current)
    for field, value in desired.items():
        if field not in ("apiVersion", "kind", "metadata", "status"):
            out[field] = copy.deepcopy(value)
    for part in _OWNED_METADATA:
        if wanted := desired.get("metadata", {}).get(part):
            out["metadata"][part] = {**(out["metadata"].get(part) or {}), **wanted}
    return out


class KubeWriter:
    """Blocking work runs in worker threads (`executor`, else asyncio's default), never on the
    event loop."""

    def __init__(self, rest: KubeRest, *, cluster: str, max_attempts: int = 5, executor: Executor | None = None):
        self.rest = rest
        self.cluster = cluster
        self.max_attempts = max_attempts
        self._executor = executor

    async def apply(self, obj: Obj, *, precondition: Precondition | None = None) -> Obj:
        """Create `obj`, or bring the existing object to it; returns what the server holds.
        An object already as desired is not written (no new resourceVersion, no watch event)."""
        try:
            rt = resource_for(obj["apiVersion"], obj["kind"])
        except KeyError as e:
            raise InvalidResource(f"cluster {self.cluster}: {_what(obj)}", "kind", e.args[0]) from None
        return await self._in_thread(functools.partial(self._apply, rt, obj, precondition), _what(obj))

    async def apply_service_import(
        self, namespace: str, name: str, spec: Obj, *, group: str = FSM_GROUP, written_by: str = ""
    ) -> Obj:
        return await self.apply(service_import(namespace, name, spec, group=group, written_by=written_by))

    async def write_status(self, rt: ResourceType, namespace: str | None, name: str, status: Obj) -> Obj:
        """Set the object's status through the status subresource."""
        what = f"{rt.kind} {namespace + '/' if namespace else ''}{name}"
        return await self._in_thread(functools.partial(self._write_status, rt, namespace, name, status), what)

    async def delete(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        """False when there was nothing to delete."""
        what = f"{rt.kind} {namespace + '/' if namespace else ''}{name}"
        return await self._in_thread(functools.partial(self._delete, rt, namespace, name), what)

    async def ensure_namespace(self, name: str) -> bool:
        """True when the namespace had to be created."""
        return await self._in_thread(functools.partial(self._ensure_namespace, name), f"Namespace {name}")

    async def _in_thread(self, call: Callable[[], T], what: str) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._guarded, call, what))

    # in the worker thread ------------------------------------------------------------------
    def _guarded(self, call: Callable[[], T], what: str) -> T:
        """Run `call`, turning client errors into the controller's errors, naming cluster and object."""
        try:
            return call()
        except ApiException as e:
            raise self._error(e, what) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise Unavailable(f"cluster {self.cluster}: {what}: {describe_error(e)}") from e

    def _apply(self, rt: ResourceType, obj: Obj, precondition: Precondition | None) -> Obj:
        namespace, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
        created_namespace = False
        for _ in range(self.max_attempts):
            try:
                current = self.rest.get(rt, namespace, name)
            except ApiException as e:
                if e.status != 404 or not_served(e):
                    raise
                if precondition is not None:
                    precondition(None)
                try:
                    return self.rest.create(rt, obj)
                except ApiException as e:
                    if e.status == 404 and _missing_namespace(e) and namespace and not created_namespace:
                        self._ensure_namespace(namespace)
                        created_namespace = True
                    elif e.status != 409:  # 409: created meanwhile by someone else: update it
                        raise
                    continue
            if precondition is not None:
                precondition(current)
            wanted = updated(current, obj)
            if wanted == current:
                return current
            try:
                return self.rest.replace(rt, wanted)
            except ApiException as e:
                if e.status != 409:
                    raise
        raise self._gave_up(_what(obj))

    def _write_status(self, rt: ResourceType, namespace: str | None, name: str, status: Obj) -> Obj:
        for _ in range(self.max_attempts):
            current = self.rest.get(rt, namespace, name)
            if current.get("status") == status:
                return current
            try:
                return self.rest.replace_status(rt, {**current, "status": status})
            except ApiException as e:
                if e.status != 409:
                    raise
        raise self._gave_up(f"status of {rt.kind} {namespace}/{name}")

    def _delete(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        try:
            self.rest.delete(rt, namespace, name)
        except ApiException as e:
            if e.status == 404 and not not_served(e):
                return False
            raise
        return True

    def _ensure_namespace(self, name: str) -> bool:
        try:
            self.rest.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    def _gave_up(self, what: str) -> Conflict:
        attempts = f"{self.max_attempts} attempts"
        return Conflict(f"cluster {self.cluster}: {what}: still conflicting after {attempts} (others keep writing it)")

    def _error(self, e: ApiException, what: str) -> MeshError:
        where = f"cluster {self.cluster}: {what}"
        message = describe_error(e)
        if not_served(e):
            return NotFound(f"{where}: the API server does not serve this resource (are meshtui's CRDs installed?)")
        if e.status == 422:
            causes = (error_status(e).get("details") or {}).get("causes") or [{}]
            return InvalidResource(where, causes[0].get("field", ""), message)
        cls = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict}.get(e.status or 0, MeshError)
        return cls(f"{where}: {message}")


def _what(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def _missing_namespace(e: ApiException) -> bool:
    details = error_status(e).get("details") or {}
    return details.get("kind") == "namespaces" and not details.get("group")

