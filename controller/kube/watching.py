"""Following one resource type of one cluster: list, then watch from the list's resourceVersion.

The loop, in the spirit of kopf's watching (resourceVersion, bookmarks, 410 Gone, reconnects
in one small place):

- list -> ADDED for every object, then SYNCED with the keys of all objects listed, so a
  consumer drops whatever vanished while it was not looking;
- watch from that resourceVersion with bookmarks; every event and bookmark moves the
  resourceVersion forward, so a watch that ends (timeoutSeconds) resumes where it stopped;
- 410 Gone (the resourceVersion was compacted away) -> list again;
- an unreachable server -> DISCONNECTED, an API error (401, 403, a CRD not installed, 5xx)
  -> FAILING, each once per outage; retry with capped exponential backoff and jitter;
  RECOVERED when it works again, then resume (or relist on 410).

The official client is synchronous: each list and each watch stream runs in this watcher's
own thread, and events reach the asyncio queue through the loop's call_soon_threadsafe, so
the event loop never blocks. `stop()` shuts the open stream's socket, so it is prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import json
import logging
import random
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from controller.kube.resources import ResourceType
from controller.kube.rest import KubeRest, describe_error, not_served

log = logging.getLogger(__name__)
T = TypeVar("T")
Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)


class EventType(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    SYNCED = "SYNCED"  # a list completed: `keys` holds every object that exists now
    DISCONNECTED = "DISCONNECTED"  # the API server cannot be reached: `error` says how
    FAILING = "FAILING"  # the API server answers with errors: `error` has its message
    RECOVERED = "RECOVERED"  # it works again (a SYNCED follows if a relist was needed)


@dataclass(frozen=True, slots=True)
class KubeEvent:
    type: EventType
    resource: ResourceType
    object: Obj | None = None  # ADDED / MODIFIED / DELETED
    keys: frozenset[Key] = frozenset()  # SYNCED
    resource_version: str = ""
    error: str = ""  # DISCONNECTED / FAILING
    not_served: bool = False  # FAILING because the API server does not serve the type (a CRD not installed)


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name", "")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with equal jitter: attempt n waits between d/2 and d,
    d = min(cap, initial * factor**n)."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        d = min(self.cap, self.initial * self.factor ** min(attempt, 64))
        return d / 2 + rng.uniform(0, d / 2)


class _End(enum.Enum):
    TIMEOUT = "the server ended the watch"
    GONE = "410 Gone"
    BROKEN = "the connection broke"
    STOPPED = "stopped"


class WatchError(Exception):
    """The watch stream carried an ERROR event other than 410 Gone."""


class ResourceWatcher:
    """Follows one resource type (of one namespace, or of all) and puts KubeEvents into `queue`."""

    def __init__(
        self,
        rest: KubeRest,
        resource: ResourceType,
        queue: asyncio.Queue[KubeEvent],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = 60,
        bookmarks: bool = True,
        backoff: Backoff = Backoff(),
        rng: random.Random | None = None,
    ):
        self.rest = rest
        self.resource = resource
        self.queue = queue
        self.namespace = namespace
        self.label_selector = label_selector
        self.timeout_seconds = timeout_seconds
        self.bookmarks = bookmarks
        self.backoff = backoff
        self._rng = rng or random.Random()
        self._resource_version = ""
        self._failure: EventType | None = None  # DISCONNECTED or FAILING while retrying
        self._error = ""
        self._stopping = threading.Event()
        self._wake = asyncio.Event()
        self._response: urllib3.HTTPResponse | None = None
        self._response_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kube-watch-{resource.plural}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def resource_version(self) -> str:
        """The newest resourceVersion seen (list, event or bookmark); watches resume from it."""
        return self._resource_version

    @property
    def connected(self) -> bool:
        """False while the API server cannot be reached."""
        return self._failure is not EventType.DISCONNECTED

    @property
    def error(self) -> str:
        """Why the last attempt failed, while retrying; "" when all is well."""
        return self._error if self._failure is not None else ""

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"watch {self.resource}")

    async def stop(self, grace: float = 2.0) -> None:
        """Stop within `grace` seconds: the open stream is shut at once; a list in flight is
        abandoned to its thread, which posts nothing more."""
        self._stopping.set()
        self._wake.set()
        with self._response_lock:
            if self._response is not None:
                _shut(self._response)
        abandoned = False
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            if not self._task.done():
                abandoned = True
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        # An idle worker exits at once; one still inside a call is left to finish it.
        self._executor.shutdown(wait=not abandoned, cancel_futures=True)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        need_list, attempt = True, 0
        while not self._stopping.is_set():
            missing = False
            try:
                if need_list:
                    await self._list()
                    need_list, attempt = False, 0
                end = await self._in_thread(self._stream, self._resource_version)
            except ApiException as e:
                if e.status == 410:
                    need_list = True
                    continue
                failure, error, missing = EventType.FAILING, describe_error(e), not_served(e)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                failure, error = EventType.DISCONNECTED, describe_error(e)
            except WatchError as e:
                failure, error = EventType.FAILING, str(e)
            except Exception as e:  # a malformed answer: report it and keep following the cluster
                log.exception("%s: unexpected answer from the API server", self.resource)
                failure, error = EventType.FAILING, f"unexpected answer: {describe_error(e)}"
            else:
                if end is _End.GONE:
                    log.debug("%s: resourceVersion %s expired, relisting", self.resource, self._resource_version)
                    need_list = True
                if end is _End.BROKEN:  # answered, then dropped: retry soon, never in a tight loop
                    await self._pause(attempt)
                    attempt += 1
                elif end is not _End.STOPPED:
                    attempt = 0
                continue
            if self._stopping.is_set():
                break
            self._mark_failed(failure, error, missing)
            log.info("%s: %s; retrying", self.resource, error)
            await self._pause(attempt)
            attempt += 1

    async def _pause(self, attempt: int) -> None:
        """Sleep the backoff delay of `attempt`, waking at once on stop()."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.backoff.delay(attempt, self._rng))

    # steps ---------------------------------------------------------------------------------
    async def _list(self) -> None:
        items, resource_version = await self._in_thread(
            self.rest.list, self.resource, self.namespace, self.label_selector
        )
        if self._stopping.is_set():
            return
        self._mark_working()
        self._resource_version = resource_version
        for obj in items:
            self._emit(KubeEvent(EventType.ADDED, self.resource, obj, resource_version=resource_version))
        keys = frozenset(key_of(obj) for obj in items)
        self._emit(KubeEvent(EventType.SYNCED, self.resource, keys=keys, resource_version=resource_version))

    def _stream(self, since: str) -> _End:
        """In the worker thread: one watch request, read to its end."""
        response = self.rest.watch(
            self.resource, since, self.timeout_seconds,
            bookmarks=self.bookmarks, namespace=self.namespace, label_selector=self.label_selector,
        )  # fmt: skip
        with self._response_lock:
            self._response = response
        self._post(self._mark_working)
        try:
            if self._stopping.is_set():  # stop() came before the response was there to shut
                return _End.STOPPED
            for line in iter_resp_lines(response):
                if self._stopping.is_set():
                    return _End.STOPPED
                if line and self._handle_line(line) is _End.GONE:
                    return _End.GONE
            return _End.STOPPED if self._stopping.is_set() else _End.TIMEOUT
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if self._stopping.is_set():
                return _End.STOPPED
            log.debug("%s: watch stream broke: %s", self.resource, describe_error(e))
            return _End.BROKEN
        finally:
            with self._response_lock:
                self._response = None
            response.close()
            response.release_conn()

    def _handle_line(self, line: str) -> _End | None:
        event = json.loads(line)
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                return _End.GONE
            raise WatchError(
                f"watch of {self.resource} failed: {obj.get('code')} {obj.get('reason')}: {obj.get('message')}"
            )
        resource_version = (obj.get("metadata") or {}).get("resourceVersion") or self._resource_version
        self._resource_version = resource_version
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            obj.setdefault("apiVersion", self.resource.api_version)
            obj.setdefault("kind", self.resource.kind)
            self._post(self._emit, KubeEvent(EventType(kind), self.resource, obj, resource_version=resource_version))
        elif kind != "BOOKMARK":
            log.warning("%s: ignoring a watch event of unknown type %r", self.resource, kind)
        return None

    # helpers -------------------------------------------------------------------------------
    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        """From the worker thread to the event loop, in order."""
        if self._stopping.is_set() or self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under an abandoned thread
            self._loop.call_soon_threadsafe(fn, *args)

    def _emit(self, event: KubeEvent) -> None:
        self.queue.put_nowait(event)

    def _mark_working(self) -> None:
        if self._failure is not None:
            self._failure = None
            self._emit(KubeEvent(EventType.RECOVERED, self.resource, resource_version=self._resource_version))

    def _mark_failed(self, failure: EventType, error: str, missing: bool = False) -> None:
        self._error = error
        if self._failure is not failure:
            self._failure = failure
            self._emit(KubeEvent(failure, self.resource, error=error, not_served=missing))


def _shut(response: urllib3.HTTPResponse) -> None:
    """Wake a thread blocked reading `response` by shutting its socket down."""
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class ClusterWatch:
    """One ResourceWatcher per resource type of one cluster, all feeding one queue."""

    def __init__(
        self, rest: KubeRest, resources: tuple[ResourceType, ...], queue: asyncio.Queue[KubeEvent], **options: Any
    ):
        self.watchers = [ResourceWatcher(rest, r, queue, **options) for r in resources]

    @property
    def connected(self) -> bool:
        return all(w.connected for w in self.watchers)

    def start(self) -> None:
        for w in self.watchers:
            w.start()

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.watchers))
