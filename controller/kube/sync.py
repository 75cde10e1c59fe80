"""One Kubernetes-backed cluster kept in step with the resource core.

In: the cluster's watches (Namespaces, Services, EndpointSlices, exports, policies, splits,
Links, and the ServiceImports meshtui wrote there) fill a ClusterMirror; each batch of events
becomes one `core.sync_external` write, so the cluster's objects are its resources in the core
like an embedded cluster's (exports there become imports everywhere else, and vice versa).

Out, only while `may_write()` (the leader, with leader election): the ServiceImports the core
derives for this cluster are created, updated and deleted in its API server (KubeWriter:
namespaces created, resourceVersion conflicts retried), and the conditions the core derives for
its exports and policies are written through the status subresource. Imports are written only
once the core knows every Kubernetes-backed cluster's exports (`imports_ready()`: listed, or
stored by an earlier run), so a controller that starts with an empty store does not rewrite
imports it has not yet derived in full.

The cluster's own state is the Cluster's status: conditions Reachable and Synced, and a
`kubernetes` block (server, objects followed, types not served, objects refused, last write
error). While the API server cannot be reached, the core keeps the cluster's last known objects
(imports derived from its exports keep their endpoints), the watchers retry with backoff and
writes wait; on recovery the watches resume from their resourceVersion (or relist on 410 Gone)
and the writers compare again.

Nothing here blocks the event loop: watches and writes run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from controller.errors import MeshError, Unavailable
from controller.kube.mirror import ClusterMirror
from controller.kube.resources import IMPORTS, NAMESPACES, WATCHED, WITH_STATUS, ResourceType
from controller.kube.rest import KubeRest
from controller.kube.watching import Backoff, EventType, KubeEvent, ResourceWatcher
from controller.kube.writer import MANAGED_SELECTOR, KubeWriter
from controller.model.kinds import ServiceImportSpec
from controller.model.meta import condition
from controller.model.validation import ResourceKey
from controller.resources import ResourceCore, now_iso

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Key = tuple[str, str]


@dataclass(frozen=True)
class SyncTuning:
    backoff: Backoff = Backoff()  # watchers' reconnects
    write_backoff: Backoff = Backoff(initial=0.5, cap=30.0)  # a write pass that failed is retried after
    watch_timeout: int = 300  # seconds each watch request stays open before it is renewed
    write_concurrency: int = 4
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


def import_spec(spec: Obj | None) -> Obj:
    """A ServiceImport spec as meshtui's model reads it (an API server may fill in defaults)."""
    return ServiceImportSpec.model_validate(spec or {}).model_dump(mode="json", exclude_none=True)


class ClusterSync:
    def __init__(
        self,
        core: ResourceCore,
        cluster: str,
        rest: KubeRest,
        *,
        may_write: Callable[[], bool] = lambda: True,
        imports_ready: Callable[[], bool] = lambda: True,
        on_listed: Callable[[], None] = lambda: None,
        identity: str = "",
        tuning: SyncTuning = SyncTuning(),
        server: str = "",
    ):
        self.core = core
        self.cluster = cluster
        self.rest = rest
        self.identity = identity
        self.tuning = tuning
        self.server = server
        self.may_write = may_write
        self.imports_ready = imports_ready
        self._on_listed = on_listed
        self.mirror = ClusterMirror(cluster, (*WATCHED, IMPORTS))
        self.queue: asyncio.Queue[KubeEvent] = asyncio.Queue()
        options: dict[str, Any] = {"timeout_seconds": tuning.watch_timeout, "backoff": tuning.backoff}
        self.watchers = [ResourceWatcher(rest, rt, self.queue, **options) for rt in WATCHED]
        self.watchers.append(ResourceWatcher(rest, IMPORTS, self.queue, label_selector=MANAGED_SELECTOR, **options))
        self._executor = ThreadPoolExecutor(tuning.write_concurrency, thread_name_prefix=f"kube-write-{cluster}")
        self.writer = KubeWriter(rest, cluster=cluster, executor=self._executor)
        self.writes = 0  # ServiceImports and statuses written or deleted by this sync
        self._failures: dict[ResourceType, KubeEvent] = {}
        self._write_error = ""
        self._conditions: dict[str, Obj] = {}
        self._dirty = asyncio.Event()
        self._rng = random.Random()
        self._tasks: list[asyncio.Task[None]] = []

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._publish()
        for w in self.watchers:
            w.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._consume(), name=f"kube sync {self.cluster}"),
            loop.create_task(self._write_loop(), name=f"kube writes {self.cluster}"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.gather(*(w.stop() for w in self.watchers))
        self._executor.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """The core changed (or leadership did): compare what should be written again."""
        self._dirty.set()

    @property
    def listed(self) -> bool:
        """Every watched type was listed at least once (or is not served)."""
        return all(w.resource in self.mirror.listed for w in self.watchers)

    # in: events -> mirror -> core --------------------------------------------------------
    async def _consume(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            touched: set[ResourceKey] = set()
            prune, was_listed = False, self.listed
            for event in batch:
                touched |= self._observe(event)
                prune |= event.type is EventType.SYNCED or event.not_served
            try:
                await self._feed(touched, prune)
            except MeshError as e:  # e.g. the state dir's disk is full: keep following the cluster
                log.error("cluster %s: cannot store what its API server holds: %s", self.cluster, e.message)
            except Exception:
                log.exception("cluster %s: cannot store what its API server holds", self.cluster)
            self._publish()
            self._dirty.set()
            if self.listed and not was_listed:
                self._on_listed()

    def _observe(self, event: KubeEvent) -> set[ResourceKey]:
        rt, kind = event.resource, event.type
        if kind in (EventType.ADDED, EventType.MODIFIED):
            return self.mirror.put(rt, event.object or {})
        if kind is EventType.DELETED:
            return self.mirror.remove(rt, event.object or {})
        if kind is EventType.SYNCED:
            self._failures.pop(rt, None)
            return self.mirror.synced(rt, event.keys)
        if kind is EventType.RECOVERED:
            self._failures.pop(rt, None)
        elif event.not_served:
            self._failures.pop(rt, None)
            return self.mirror.unserved(rt)
        else:  # DISCONNECTED / FAILING
            self._failures[rt] = event
        return set()

    async def _feed(self, touched: set[ResourceKey], prune: bool) -> None:
        puts: list[Obj] = []
        deletes: list[ResourceKey] = []
        objects = self.core.store.objects
        for key in touched:
            obj = self.mirror.desired(key)
            if obj is not None:
                puts.append(obj)
            elif key in objects and self.mirror.owns(objects[key]):
                deletes.append(key)
        if prune:
            for kind in self.mirror.kinds():
                if self.mirror.complete(kind):
                    present = self.mirror.core_keys(kind)
                    deletes += [k for k, o in objects.items() if k[0] == kind and k not in present and self.mirror.owns(o)]
        if puts or deletes:
            await self.core.sync_external(puts, deletes)

    # out: core -> API server -------------------------------------------------------------
    async def _write_loop(self) -> None:
        attempt = 0
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not self.may_write():
                continue
            if await self._write_pass():
                attempt = 0
                continue
            await asyncio.sleep(self.tuning.write_backoff.delay(attempt, self._rng))
            attempt += 1
            self._dirty.set()

    async def _write_pass(self) -> bool:
        """Every write this cluster needs now; False when one failed (retried after a backoff)."""
        jobs: list[Callable[[], Awaitable[None]]] = []
        if IMPORTS in self.mirror.listed and IMPORTS not in self.mirror.not_served and self.imports_ready():
            desired = {(ns, name): o["spec"] for (c, ns, name), o in self.core.imports.items() if c == self.cluster}
            written = {key: obj.get("spec") for key, obj in self.mirror.objects[IMPORTS].items()}
            for key, spec in sorted(desired.items()):
                if (key not in written or import_spec(written[key]) != import_spec(spec)) and not self.mirror.terminating(key[0], NAMESPACES):
                    jobs.append(lambda key=key, spec=spec: self._write_import(key, spec))
            jobs += [lambda key=key: self._delete_import(key) for key in sorted(written.keys() - desired.keys())]
        for rt in WITH_STATUS:
            for key, obj in sorted(self.mirror.objects[rt].items()):
                status = self.core.status.get(self.mirror.core_key(rt, key))
                if status and obj.get("status") != status:
                    jobs.append(lambda rt=rt, key=key, status=status: self._write_status(rt, key, status))
        if not jobs:
            return True
        gate = asyncio.Semaphore(self.tuning.write_concurrency)

        async def run(job: Callable[[], Awaitable[None]]) -> bool:
            async with gate:
                if not self.may_write():  # leadership lost meanwhile: write nothing more
                    return True
                try:
                    await job()
                except MeshError as e:
                    self._write_error = e.message
                    log.log(logging.DEBUG if isinstance(e, Unavailable) else logging.WARNING, "%s", e.message)
                    return False
                except Exception as e:  # an unexpected answer: retried like any failed write
                    self._write_error = f"{type(e).__name__}: {e}"
                    log.exception("cluster %s: a write failed", self.cluster)
                    return False
                return True

        results = await asyncio.gather(*(run(job) for job in jobs))
        if all(results):
            self._write_error = ""
        self._publish()
        return all(results)

    async def _write_import(self, key: Key, spec: Obj) -> None:
        written = await self.writer.apply_service_import(key[0], key[1], spec, written_by=self.identity)
        self.writes += 1
        self.mirror.objects[IMPORTS][key] = written

    async def _delete_import(self, key: Key) -> None:
        await self.writer.delete(IMPORTS, key[0], key[1])
        self.writes += 1
        self.mirror.objects[IMPORTS].pop(key, None)

    async def _write_status(self, rt: ResourceType, key: Key, status: Obj) -> None:
        written = await self.writer.write_status(rt, key[0] or None, key[1], status)
        self.writes += 1
        if key in self.mirror.objects[rt]:
            self.mirror.objects[rt][key] = written

    # the Cluster's status ----------------------------------------------------------------
    def _publish(self) -> None:
        disconnected = [e for e in self._failures.values() if e.type is EventType.DISCONNECTED]
        failing = sorted(f"{e.resource}: {e.error}" for e in self._failures.values() if e.type is EventType.FAILING)
        if disconnected:
            reachable = condition("Reachable", False, "Unreachable",
                                  f"{disconnected[0].error}; showing its last known state")
        elif not self.mirror.listed and not failing:
            reachable = condition("Reachable", None, "Connecting", f"connecting to {self.server or 'its API server'}")
        else:
            reachable = condition("Reachable", True, "Reachable", "")
        if disconnected:
            synced = condition("Synced", False, "Unreachable", "the API server cannot be reached")
        elif failing:
            synced = condition("Synced", False, "ApiError", "; ".join(failing))
        elif self.listed:
            synced = condition("Synced", True, "Synced", "")
        else:
            synced = condition("Synced", None, "Listing", "listing the watched resources")
        conditions = [self._stamped(reachable), self._stamped(synced)]
        kube: Obj = {
            "server": self.server,
            "objects": sum(len(v) for rt, v in self.mirror.objects.items() if rt is not IMPORTS),
            "writes": self.writes,
        }
        if self.mirror.not_served:
            kube["notServed"] = sorted(str(rt) for rt in self.mirror.not_served)
        if self.mirror.refused:
            kube["refused"] = sorted(f"{k[2] + '/' if k[2] else ''}{k[3]} ({k[0]}): {m}" for k, m in self.mirror.refused.items())
        if self._write_error:
            kube["writeError"] = self._write_error
        self.core.set_status(("Cluster", "", "", self.cluster), {"conditions": conditions, "kubernetes": kube})

    def _stamped(self, cond: Obj) -> Obj:
        """`cond` with the time its status last changed."""
        previous = self._conditions.get(cond["type"])
        cond["lastTransitionTime"] = previous["lastTransitionTime"] if previous and previous["status"] == cond["status"] else now_iso()
        self._conditions[cond["type"]] = cond
        return cond
