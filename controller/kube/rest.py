"""Blocking calls of the official `kubernetes` client for any ResourceType, with plain dicts in
and out. Built-in kinds go through their typed API (CoreV1Api, DiscoveryV1Api, ...), custom
resources through CustomObjectsApi. Call these from a worker thread, never from the event loop."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from controller.kube.resources import ResourceType

Obj = dict[str, Any]

_TYPED_APIS: dict[str, Callable[[k8s.ApiClient], Any]] = {
    "": k8s.CoreV1Api,
    "discovery.k8s.io": k8s.DiscoveryV1Api,
    "coordination.k8s.io": k8s.CoordinationV1Api,
}


def error_status(e: ApiException) -> Obj:
    """The Status object an API error carried ({} when its body is not one)."""
    try:
        status = json.loads(e.body or "{}")
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def not_served(e: BaseException) -> bool:
    """A 404 for the resource type itself (the server has no such API, e.g. a CRD not
    installed), not for one object: the Status then carries no details."""
    return isinstance(e, ApiException) and e.status == 404 and "details" not in error_status(e)


def describe_error(e: BaseException) -> str:
    """One line for logs and DISCONNECTED events: the HTTP status and the server's message,
    or why the server could not be reached."""
    if isinstance(e, ApiException):
        message = error_status(e).get("message", "")
        return f"HTTP {e.status} {e.reason}" + (f": {message}" if message else "")
    if isinstance(e, urllib3.exceptions.MaxRetryError) and e.reason is not None:
        pool = e.pool
        server = f"{pool.scheme}://{pool.host}:{pool.port}" if pool is not None else e.url
        reason = re.sub(r"^\w+Connection\([^)]*\): ", "", str(e.reason))  # the pool repeats the address
        return f"cannot reach {server}: {reason}"
    return f"{type(e).__name__}: {e}"


class KubeRest:
    def __init__(self, api_client: k8s.ApiClient, *, connect_timeout: float = 5.0, read_timeout: float = 30.0):
        self.api_client = api_client
        self._typed = {group: make(api_client) for group, make in _TYPED_APIS.items()}
        self._custom = k8s.CustomObjectsApi(api_client)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout

    # verbs ---------------------------------------------------------------------------------
    def list(
        self, rt: ResourceType, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[Obj], str]:
        """Every object (of `namespace`, or of all) and the list's resourceVersion."""
        params: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
        body = self._json(self._call(rt, "list", namespace, **params))
        items = body.get("items") or []
        for item in items:  # built-in list items carry no apiVersion/kind
            item.setdefault("apiVersion", rt.api_version)
            item.setdefault("kind", rt.kind)
        return items, body["metadata"]["resourceVersion"]

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return self._json(self._call(rt, "read", namespace, name=name))

    def create(self, rt: ResourceType, obj: Obj) -> Obj:
        return self._json(self._call(rt, "create", obj["metadata"].get("namespace"), body=obj))

    def replace(self, rt: ResourceType, obj: Obj) -> Obj:
        """PUT with the object's metadata.resourceVersion: 409 Conflict when someone wrote since."""
        meta = obj["metadata"]
        return self._json(self._call(rt, "replace", meta.get("namespace"), name=meta["name"], body=obj))

    def replace_status(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        return self._json(self._call(rt, "replace", meta.get("namespace"), name=meta["name"], body=obj, status=True))

    def delete(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        self._call(rt, "delete", namespace, name=name).release_conn()

    def watch(
        self,
        rt: ResourceType,
        resource_version: str,
        timeout_seconds: int,
        *,
        bookmarks: bool = True,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> urllib3.HTTPResponse:
        """The open watch stream (JSON lines); the caller reads it and closes it."""
        params: dict[str, Any] = {
            "watch": True,
            "resource_version": resource_version,
            "timeout_seconds": timeout_seconds,
            "allow_watch_bookmarks": bookmarks,
        }
        if label_selector:
            params["label_selector"] = label_selector
        # The server ends the watch after timeout_seconds; the read timeout only guards a silent peer.
        return self._call(
            rt, "list", namespace, _timeout=(self._connect_timeout, timeout_seconds + self._read_timeout), **params
        )

    # dispatch ------------------------------------------------------------------------------
    def _call(
        self,
        rt: ResourceType,
        verb: str,
        namespace: str | None,
        *,
        status: bool = False,
        _timeout: tuple[float, float] | None = None,
        **params: Any,
    ) -> urllib3.HTTPResponse:
        if rt.builtin:
            method, args = self._typed_method(rt, verb, namespace, status)
        else:
            method, args = self._custom_method(rt, verb, namespace, status)
        return method(
            **args,
            **params,
            _preload_content=False,
            _request_timeout=_timeout or (self._connect_timeout, self._read_timeout),
        )

    def _typed_method(
        self, rt: ResourceType, verb: str, namespace: str | None, status: bool
    ) -> tuple[Callable[..., Any], Obj]:
        api = self._typed[rt.group]
        suffix = "_status" if status else ""
        if not rt.namespaced:
            return getattr(api, f"{verb}_{rt.snake}{suffix}"), {}
        if namespace is None:
            if verb != "list":
                raise ValueError(f"{rt} is namespaced: {verb} needs a namespace")
            return getattr(api, f"list_{rt.snake}_for_all_namespaces"), {}
        return getattr(api, f"{verb}_namespaced_{rt.snake}{suffix}"), {"namespace": namespace}

    def _custom_method(
        self, rt: ResourceType, verb: str, namespace: str | None, status: bool
    ) -> tuple[Callable[..., Any], Obj]:
        verb = "get" if verb == "read" else verb
        suffix = "_status" if status else ""
        args: Obj = {"group": rt.group, "version": rt.version, "plural": rt.plural}
        if rt.namespaced and namespace is not None:
            return getattr(self._custom, f"{verb}_namespaced_custom_object{suffix}"), {**args, "namespace": namespace}
        if rt.namespaced and verb != "list":
            raise ValueError(f"{rt} is namespaced: {verb} needs a namespace")
        return getattr(self._custom, f"{verb}_cluster_custom_object{suffix}"), args

    @staticmethod
    def _json(response: urllib3.HTTPResponse) -> Obj:
        try:
            return json.loads(response.data)
        finally:
            response.release_conn()
