"""A small Kubernetes API server on loopback for tests: the official `kubernetes` client talks
to it unchanged (discovery, REST verbs, watch streams with bookmarks and 410 Gone)."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.kubeapi import errors
from tests.kubeapi.errors import ApiError
from tests.kubeapi.patches import MERGE
from tests.kubeapi.paths import Discovery, Target, parse
from tests.kubeapi.resources import NAMESPACES, SERVED, VERBS, ServedResource, group_versions, resources_of
from tests.kubeapi.selectors import field_selector, label_selector
from tests.kubeapi.store import Change, Store, watch_event

Obj = dict[str, Any]
_ABORT = object()  # queued into every open watch when the server goes away
DEFAULT_WATCH_SECONDS = 1800.0  # the real server's minimum request timeout


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _line(event_type: str, obj: Obj) -> bytes:
    return (json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n").encode()


class KubeAPIServer:
    """Use `server = await KubeAPIServer.start()`, then `server.kubeconfig(path)`; `await server.stop()`."""

    def __init__(
        self, *, host: str = "127.0.0.1", token: str | None = None, bookmark_interval: float = 1.0, name: str = "kube"
    ):
        self.host = host
        self.port = 0
        self.name = name
        self.token = token if token is not None else secrets.token_hex(16)
        self.bookmark_interval = bookmark_interval
        self.store = Store()
        self.watch_log: list[tuple[str, str | None]] = []  # (plural, resourceVersion asked) of each watch request
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self._races = 0
        self._runner: web.AppRunner | None = None
        self._watch_queues: set[asyncio.Queue[Any]] = set()
        for ns in ("default", "kube-system"):
            self.store.create(NAMESPACES, None, {"metadata": {"name": ns}})

    # controls ------------------------------------------------------------------------------
    @classmethod
    async def start(cls, **kwargs: Any) -> KubeAPIServer:
        server = cls(**kwargs)
        await server.listen()
        return server

    async def listen(self) -> None:
        """Start accepting connections (again, on the same port after `stop`/unreachable)."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = site.port
        self._runner = runner

    async def stop(self) -> None:
        """Drop every connection and stop listening. The state is kept: `listen()` resumes it."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for queue in list(self._watch_queues):
            queue.put_nowait(_ABORT)
        if runner.server is not None:
            for connection in runner.server.connections:
                connection.force_close()
        await runner.cleanup()

    async def set_unreachable(self, unreachable: bool) -> None:
        if unreachable:
            await self.stop()
        else:
            await self.listen()

    def compact(self) -> int:
        """Forget the change history: watches from an older resourceVersion now get 410 Gone."""
        return self.store.compact()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kubeconfig_dict(self, context: str | None = None) -> Obj:
        ctx = context or self.name
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": ctx, "cluster": {"server": self.url}}],
            "users": [{"name": f"{ctx}-admin", "user": {"token": self.token}}],
            "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": f"{ctx}-admin", "namespace": "default"}}],
            "current-context": ctx,
        }

    def kubeconfig(self, path: Path | str, context: str | None = None) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.kubeconfig_dict(context)))
        return path

    # direct access: the cluster changing while a client cannot see it ----------------------
    @staticmethod
    def resource(api_version: str, kind: str) -> ServedResource:
        for r in SERVED:
            if (r.group_version, r.kind) == (api_version, kind):
                return r
        raise KeyError(f"{api_version} {kind} is not served")

    def write_direct(self, obj: Obj) -> Obj:
        """Create or replace `obj` without HTTP, as another writer of the cluster would."""
        r = self.resource(obj["apiVersion"], obj["kind"])
        ns, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
        try:
            current = self.store.get(r, ns, name)
        except ApiError:
            return self.store.create(r, ns, obj)
        body = {**obj, "metadata": {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        return self.store.replace(r, ns, name, body, None)

    def race_next_writes(self, count: int = 1) -> None:
        """The next `count` PUTs find their object changed by another writer just before them,
        so a PUT carrying the resourceVersion it read gets 409 Conflict."""
        self._races = count

    def delete_direct(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj:
        return self.store.delete(self.resource(api_version, kind), namespace, name, None)

    # HTTP ----------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        try:
            if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            target = parse(request.path)
            if isinstance(target, Discovery):
                if request.method != "GET":
                    raise ApiError(405, "MethodNotAllowed", f"{request.method} is not allowed on discovery documents")
                return web.json_response(self._discovery(target))
            return await self._serve(request, target)
        except ApiError as e:
            return web.json_response(e.status(), status=e.code)

    async def _serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        r, ns, name, method = target.resource, target.namespace, target.name, request.method
        if request.query.get("dryRun"):
            raise errors.bad_request("dryRun is not supported by this test server")
        if name is None and method == "GET":
            matches_labels = label_selector(request.query.get("labelSelector"))
            matches_fields = field_selector(request.query.get("fieldSelector"))

            def matches(obj: Obj) -> bool:
                return matches_labels(obj) and matches_fields(obj)

            if _truthy(request.query.get("watch")):
                return await self._watch(request, target, matches)
            items = self.store.select(r, ns, matches)
            if r.builtin:
                for item in items:
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
            meta = {"resourceVersion": str(self.store.revision)}
            return web.json_response(
                {"kind": f"{r.kind}List", "apiVersion": r.group_version, "metadata": meta, "items": items}
            )
        if name is None and method == "POST":
            return web.json_response(self.store.create(r, ns, await self._body(request)), status=201)
        if name is not None and method == "GET":
            return web.json_response(self.store.get(r, ns, name))
        if name is not None and method == "PUT":
            if self._races > 0:
                self._races -= 1
                race = {"metadata": {"annotations": {"kubeapi.test/raced-at": str(self.store.revision)}}}
                self.store.patch(r, ns, name, MERGE, race, None)
            return web.json_response(self.store.replace(r, ns, name, await self._body(request), target.subresource))
        if name is not None and method == "PATCH":
            patched = self.store.patch(r, ns, name, request.content_type, await self._body(request), target.subresource)
            return web.json_response(patched)
        if name is not None and method == "DELETE" and target.subresource is None:
            options = await self._body(request) if request.can_read_body else None
            deleted = self.store.delete(r, ns, name, options)
            if r.delete_returns_object:
                return web.json_response(deleted)
            details = {"name": name, "kind": r.plural, "uid": deleted["metadata"]["uid"]}
            if r.group:
                details["group"] = r.group
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
            )
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {request.path}")

    @staticmethod
    async def _body(request: web.Request) -> Any:
        text = await request.text()
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise errors.bad_request(f"the request body is not valid JSON: {e}") from e

    async def _watch(self, request: web.Request, target: Target, matches: Any) -> web.StreamResponse:
        r, ns = target.resource, target.namespace
        asked = request.query.get("resourceVersion") or None
        try:
            timeout = float(request.query.get("timeoutSeconds", DEFAULT_WATCH_SECONDS))
        except ValueError as e:
            raise errors.bad_request(f"timeoutSeconds must be a number: {e}") from e
        bookmarks = _truthy(request.query.get("allowWatchBookmarks"))
        self.watch_log.append((r.plural, asked))

        # The initial events and the subscription are taken with no await in between, so no
        # change can fall in the gap.
        gone: ApiError | None = None
        initial: list[tuple[str, Obj]] = []
        if asked in (None, "0"):
            initial = [("ADDED", obj) for obj in self.store.select(r, ns, matches)]
        else:
            try:
                since = int(asked)
            except ValueError as e:
                raise errors.bad_request(f"resourceVersion must be an integer: {asked!r}") from e
            try:
                initial = [
                    ev for change in self.store.changes_since(since) if (ev := watch_event(change, r, ns, matches))
                ]
            except ApiError as e:
                gone = e
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def on_change(change: Change) -> None:
            if event := watch_event(change, r, ns, matches):
                queue.put_nowait(event)

        unsubscribe = self.store.subscribe(on_change) if gone is None else (lambda: None)
        self._watch_queues.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if gone is not None:
                await response.write(_line("ERROR", gone.status()))
            else:
                for event in initial:
                    await response.write(_line(*event))
                if not await self._stream(response, queue, r, timeout, bookmarks):
                    return response
            await response.write_eof()
        except ConnectionError:
            pass
        finally:
            unsubscribe()
            self._watch_queues.discard(queue)
        return response

    async def _stream(
        self,
        response: web.StreamResponse,
        queue: asyncio.Queue[Any],
        r: ServedResource,
        timeout: float,
        bookmarks: bool,
    ) -> bool:
        """Stream queued events until the timeout (True) or until the server goes away (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + self.bookmark_interval
        while True:
            now = loop.time()
            if now >= deadline:
                break
            wake = min(deadline, next_bookmark) if bookmarks else deadline
            try:
                item = await asyncio.wait_for(queue.get(), max(0.0, wake - now))
            except TimeoutError:
                if bookmarks and loop.time() >= next_bookmark:
                    await response.write(self._bookmark(r))
                    next_bookmark = loop.time() + self.bookmark_interval
                continue
            if item is _ABORT:
                return False
            await response.write(_line(*item))
        while not queue.empty():
            item = queue.get_nowait()
            if item is _ABORT:
                return False
            await response.write(_line(*item))
        if bookmarks:
            await response.write(self._bookmark(r))
        return True

    def _bookmark(self, r: ServedResource) -> bytes:
        # Sent only with the queue drained, so every change up to this revision was delivered.
        return _line(
            "BOOKMARK",
            {"kind": r.kind, "apiVersion": r.group_version, "metadata": {"resourceVersion": str(self.store.revision)}},
        )

    # discovery -----------------------------------------------------------------------------
    def _discovery(self, d: Discovery) -> Obj:
        if d.document == "version":
            return {
                "major": "1", "minor": "31", "gitVersion": "v1.31.0", "gitCommit": "meshtui-tests",
                "gitTreeState": "clean", "buildDate": "2024-08-13T00:00:00Z", "goVersion": "go1.22.5",
                "compiler": "gc", "platform": "linux/amd64",
            }  # fmt: skip
        if d.document == "api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}
                ],
            }
        if d.document == "apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g) for g in group_versions()]}
        if d.document == "group":
            return {"kind": "APIGroup", "apiVersion": "v1", **self._group(d.group)}
        resources: list[Obj] = []
        for r in resources_of(d.group, d.version):
            entry = {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(VERBS),
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            resources.append(entry)
            if r.status_subresource:
                resources.append(
                    {
                        "name": f"{r.plural}/status",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        gv = f"{d.group}/{d.version}" if d.group else d.version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    @staticmethod
    def _group(group: str) -> Obj:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in group_versions()[group]]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def merged_kubeconfig(servers: dict[str, KubeAPIServer], path: Path | str, current: str | None = None) -> Path:
    """One kubeconfig file with a context per server (named by the dict's keys)."""
    docs = [s.kubeconfig_dict(ctx) for ctx, s in servers.items()]
    merged = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [c for d in docs for c in d["clusters"]],
        "users": [u for d in docs for u in d["users"]],
        "contexts": [c for d in docs for c in d["contexts"]],
        "current-context": current or next(iter(servers)),
    }
    path = Path(path)
    path.write_text(yaml.safe_dump(merged))
    return path
