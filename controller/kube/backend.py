"""Kubernetes-backed clusters in a controller: following them, and writing to them.

`KubeBackend(core)` belongs to every in-process controller (controller/embedded.py):

- Writes (always). `apply` and `delete` of a Kubernetes-backed cluster's resources go to that
  cluster's API server, then into the core as that cluster's last known state; everything else
  goes to the core as before. An apply is validated as a whole first (nothing is written when
  any document is refused); then the documents that stay in meshtui (Clusters, embedded
  clusters' resources) are committed together, all or nothing; then each document of a
  Kubernetes-backed cluster is written to its API server in order, as `kubectl apply` does: an
  error names the document and the ones already written stay. Writing is create, or replace the
  spec (and the labels/annotations the document names) of the object there, read-modify-write
  guarded by its resourceVersion; a document carrying the resourceVersion it was read at is
  refused with Conflict if the object changed since, in meshtui or in the cluster.
- Following (once `start()`ed, in long-running controllers): one ClusterSync per
  Kubernetes-backed Cluster, started, restarted and stopped as Clusters are applied, changed
  and deleted; optionally under Lease-based leader election, so only the leader writes
  ServiceImports and statuses.

The `kubernetes` client is imported only when a Kubernetes-backed cluster is used, so commands
over embedded federations start as fast as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from typing import TYPE_CHECKING, Any

from controller.errors import Conflict, InvalidResource, MeshError
from controller.interface import CheckResult
from controller.kube.checks import kube_checks
from controller.kube.objects import content, describe, kubernetes_backed, to_core, to_kube
from controller.kube.resources import resource_for
from controller.leader import LeaderOptions, default_identity
from controller.model import BY_NAME, resolve_kind
from controller.model.manifests import parse_documents
from controller.model.meta import condition
from controller.model.validation import describe_key, key_of, validate_apply
from controller.resources import ResourceCore, now_iso

if TYPE_CHECKING:
    from controller.kube.rest import KubeRest
    from controller.kube.sync import ClusterSync, SyncTuning
    from controller.leader import LeaderElector

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Endpoint = tuple[str | None, str | None]  # (kubeconfig, context) of a Cluster's spec

NOT_IN_KUBERNETES = {
    "Workload": "Workloads run bundled sample apps in embedded clusters only; deploy a Deployment there with kubectl",
    "ExternalService": "ExternalServices become routes of embedded clusters' proxies only; in Kubernetes, "
                       "call the outside service directly or through your mesh's egress",
    "Endpoints": "meshtui follows EndpointSlices in Kubernetes-backed clusters: write a discovery.k8s.io/v1 EndpointSlice",
}


def endpoint_of(cluster: Obj) -> Endpoint | None:
    spec = cluster.get("spec") or {}
    return (spec.get("kubeconfig"), spec.get("context")) if kubernetes_backed(spec) else None


class KubeBackend:
    def __init__(self, core: ResourceCore):
        self.core = core
        self.identity = default_identity()
        self.syncs: dict[str, ClusterSync] = {}
        self.leader: LeaderElector | None = None
        self._followed: dict[str, Endpoint] = {}  # what each sync was started with
        self._rests: dict[str, tuple[Endpoint, KubeRest]] = {}  # users' writes, per cluster
        self._broken: dict[str, Endpoint] = {}  # clusters whose kubeconfig cannot be used, until it changes
        self._known: set[str] = set()  # clusters whose exports the core knows (listed, or stored before)
        self._tuning: SyncTuning | None = None
        self._changed = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._rest_lock = asyncio.Lock()
        core.on_change(self._on_change)

    # which clusters --------------------------------------------------------------------------
    def clusters(self) -> dict[str, Endpoint]:
        """Kubernetes-backed member clusters and where they are reached."""
        out = {}
        for name, obj in self.core.state.clusters.items():
            ep = endpoint_of(obj)
            if ep is not None:
                out[name] = ep
        return out

    def kube_backed(self, cluster: str | None) -> bool:
        obj = self.core.state.clusters.get(cluster or "")
        return obj is not None and endpoint_of(obj) is not None

    # lifecycle -------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._supervisor is not None

    async def start(self, *, leader: LeaderOptions | None = None, tuning: SyncTuning | None = None) -> None:
        """Follow every Kubernetes-backed cluster from now on; with `leader`, write only while
        holding that Lease."""
        from controller.kube.sync import SyncTuning
        from controller.leader import LeaderElector

        if self.started:
            return
        self._tuning = tuning or SyncTuning()
        self._known = {n for n in self.clusters() if self._has_stored_state(n)}
        if leader is not None:
            self.leader = await asyncio.to_thread(LeaderElector.from_options, leader)
            self.identity = self.leader.identity
            self.leader.subscribe(lambda _leading: self._wake_all())
            self.leader.start()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="kube backend")
        self._changed.set()

    async def stop(self, *, release: bool = True) -> None:
        """Stop following; writes stop first, then the Lease is released (`release=False`
        leaves it to expire, as a crash would)."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await asyncio.gather(*(s.stop() for s in self.syncs.values()))
        self.syncs.clear()
        if self.leader is not None:
            await self.leader.stop(release=release)
            self.leader = None
        for _, rest in self._rests.values():
            rest.api_client.close()
        self._rests.clear()

    def may_write(self) -> bool:
        return self.leader is None or self.leader.is_leader

    def waiting_for(self) -> list[str]:
        """Kubernetes-backed clusters whose exports the core does not know yet (never listed, no
        stored state): ServiceImports are written nowhere until they are known."""
        return sorted(n for n in self.syncs if n not in self._known)

    def _imports_ready(self) -> bool:
        return not self.waiting_for()

    def _on_listed(self, cluster: str) -> None:
        self._known.add(cluster)
        self._wake_all()

    def _has_stored_state(self, cluster: str) -> bool:
        return any(k[1] == cluster for k in self.core.store.objects)

    def _on_change(self, _clusters: set[str]) -> None:
        if self.started:
            self._changed.set()
            self._wake_all()

    def _wake_all(self) -> None:
        for sync in self.syncs.values():
            sync.wake()

    async def _supervise(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._follow(self.clusters())
            except Exception:  # keep following the other clusters; the next change retries
                log.exception("cannot start or stop following a Kubernetes-backed cluster")

    async def _follow(self, wanted: dict[str, Endpoint]) -> None:
        """Start, restart and stop ClusterSyncs so that exactly `wanted` are followed."""
        for name in list(self.syncs):
            if wanted.get(name) != self._followed[name]:
                await self._stop_sync(name, forget=name not in wanted)
        for name in list(self._broken):
            if wanted.get(name) != self._broken[name]:
                del self._broken[name]
        for name in wanted:
            if name not in self.syncs and name not in self._broken:
                await self._start_sync(name)

    async def _start_sync(self, name: str) -> None:
        from controller.kube.sync import ClusterSync

        endpoint = self.clusters()[name]
        try:
            rest = await self._new_rest(name, endpoint)
        except MeshError as e:
            self._broken[name] = endpoint
            self._known.add(name)  # nothing can be learnt of it: it holds back no one
            log.error("%s", e.message)
            reason = condition("Reachable", False, "InvalidKubeconfig", e.message, now_iso())
            self.core.set_status(("Cluster", "", "", name), {"conditions": [reason]})
            return
        assert self._tuning is not None
        sync = ClusterSync(
            self.core, name, rest, may_write=self.may_write, imports_ready=self._imports_ready,
            on_listed=lambda: self._on_listed(name), identity=self.identity, tuning=self._tuning,
            server=rest.api_client.configuration.host,
        )  # fmt: skip
        self.syncs[name] = sync
        self._followed[name] = endpoint
        sync.start()
        log.info("following cluster %s at %s", name, sync.server)

    async def _stop_sync(self, name: str, *, forget: bool) -> None:
        sync = self.syncs.pop(name)
        del self._followed[name]
        await sync.stop()
        sync.rest.api_client.close()
        if forget:  # the Cluster left the federation: so do the objects read from it
            owned = [k for k, o in self.core.store.objects.items() if sync.mirror.owns(o)]
            await self.core.sync_external([], owned)
            self._known.discard(name)

    async def _rest(self, cluster: str) -> KubeRest:
        """The client users' writes to `cluster` go through (made once per kubeconfig/context)."""
        endpoint = self.clusters()[cluster]
        async with self._rest_lock:
            cached = self._rests.get(cluster)
            if cached is not None and cached[0] == endpoint:
                return cached[1]
            rest = await self._new_rest(cluster, endpoint)
            if cached is not None:
                cached[1].api_client.close()
            self._rests[cluster] = (endpoint, rest)
            return rest

    async def _new_rest(self, cluster: str, endpoint: Endpoint) -> KubeRest:
        from controller.kube.client import new_api_client
        from controller.kube.rest import KubeRest

        try:
            api = await asyncio.to_thread(new_api_client, *endpoint)
        except InvalidResource as e:
            field = "spec.context" if e.field == "context" else "spec.kubeconfig"
            raise InvalidResource(f"Cluster {cluster}", field, e.why) from None
        if self._tuning is None:
            return KubeRest(api)
        return KubeRest(api, connect_timeout=self._tuning.connect_timeout, read_timeout=self._tuning.read_timeout)

    # writes ----------------------------------------------------------------------------------
    async def apply(
        self, manifests: str | list[Obj], *, cluster: str | None = None, namespace: str | None = None, source: str = "input"
    ) -> list[Obj]:
        docs = parse_documents(manifests, source) if isinstance(manifests, str) else manifests
        if not self.clusters() and not any(isinstance(d, dict) and d.get("kind") == "Cluster" and endpoint_of(d) for d in docs):
            return await self.core.apply(docs, cluster=cluster, namespace=namespace, source=source)  # embedded only
        if not docs:
            raise InvalidResource(source, "", "no documents to apply")
        objs = validate_apply(copy.deepcopy(docs), self.core.view(), cluster=cluster, namespace=namespace, source=source)
        kube = set(self.clusters()) | {o["metadata"]["name"] for o in objs if o["kind"] == "Cluster" and endpoint_of(o)}
        targets = {i: t for i, o in enumerate(objs) if (t := _target(o)) in kube}
        if not targets:
            return await self.core.apply(docs, cluster=cluster, namespace=namespace, source=source)
        for i, target in targets.items():
            _check_writable(objs[i], target, f"{source} document {i + 1} ({describe(objs[i])})")
        out: dict[int, Obj] = {}
        local = [i for i in range(len(objs)) if i not in targets]
        if local:
            stored = await self.core.apply([docs[i] for i in local], cluster=cluster, namespace=namespace, source=source)
            out.update(zip(local, stored))
        done: list[str] = []
        for i, target in targets.items():
            try:
                out[i] = await self._write(target, objs[i])
            except MeshError as e:
                where = f"{source} document {i + 1} ({describe(objs[i])}) in cluster {target}"
                raise _located(e, where, done) from None
            done.append(f"{describe(objs[i])} in {target}")
        return [out[i] for i in range(len(objs))]

    async def delete(self, kind: str, name: str, *, cluster: str | None = None, namespace: str | None = None) -> Obj:
        k = resolve_kind(kind)
        obj = self.core.get(k.name, name, cluster, namespace)
        target = _target(obj)
        if not self.kube_backed(target) or k.derived:
            return await self.core.delete(k.name, name, cluster=cluster, namespace=namespace)
        from controller.kube.writer import KubeWriter

        rest = await self._rest(target)
        rt = resource_for(obj["apiVersion"], obj["kind"])
        await KubeWriter(rest, cluster=target).delete(rt, obj["metadata"].get("namespace"), name)
        await self.core.sync_external([], [key_of(obj)])
        return obj

    async def _write(self, cluster: str, obj: Obj) -> Obj:
        from controller.kube.writer import KubeWriter

        key = key_of(obj)
        sent = obj["metadata"].get("resourceVersion")
        precondition = None
        if sent is not None:
            stored = self.core.store.objects.get(key)
            if stored is None and sent != "0":
                raise Conflict(f"{describe_key(key)} no longer exists (deleted since you read it)")
            if stored is not None and sent != stored["metadata"]["resourceVersion"]:
                raise Conflict(f"{describe_key(key)} was changed since you read it (your resourceVersion {sent}, "
                               f"now {stored['metadata']['resourceVersion']}); read it again and retry")
            expected = content(stored) if stored is not None else None

            def precondition(current: Obj | None) -> None:
                try:
                    now = None if current is None else content(to_core(cluster, current))
                except InvalidResource:
                    now = {}
                if now != expected:
                    raise Conflict(f"{describe_key(key)} was changed in cluster {cluster} since you read it; read it again and retry")

        rest = await self._rest(cluster)
        written = await KubeWriter(rest, cluster=cluster).apply(to_kube(obj), precondition=precondition)
        await self.core.sync_external([to_core(cluster, written)], [])
        return self.core.get(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("cluster"), obj["metadata"].get("namespace"))

    # checks ----------------------------------------------------------------------------------
    def checks(self) -> list[CheckResult]:
        return kube_checks(self.core.state, self.core.status, followed=self.started, waiting_for=self.waiting_for())


def _target(obj: Obj) -> str | None:
    """The member cluster whose API server holds `obj` if it is Kubernetes-backed: a namespaced
    object's cluster; a Link's source cluster."""
    if obj["kind"] == "Link":
        return (obj.get("spec") or {}).get("sourceCluster")
    return obj["metadata"].get("cluster") if BY_NAME[obj["kind"]].namespaced else None


def _check_writable(obj: Obj, cluster: str, where: str) -> None:
    why = NOT_IN_KUBERNETES.get(obj["kind"])
    if why is not None:
        raise InvalidResource(where, "kind", f"cluster {cluster} is Kubernetes-backed: {why}")
    try:
        resource_for(obj["apiVersion"], obj["kind"])
    except KeyError as e:
        served = sorted(v for v in BY_NAME[obj["kind"]].api_versions if _served(v, obj["kind"]))
        raise InvalidResource(where, "apiVersion", f"{e.args[0]}; use {' or '.join(served)}") from None


def _served(api_version: str, kind: str) -> bool:
    try:
        resource_for(api_version, kind)
    except KeyError:
        return False
    return True


def _located(e: MeshError, where: str, done: list[str]) -> MeshError:
    """`e` as raised, its message naming the document and what was already written."""
    suffix = f" (already written: {', '.join(done)})" if done else ""
    if isinstance(e, InvalidResource):
        return InvalidResource(where, e.field, e.why + suffix)
    out = MeshError.__new__(type(e))
    MeshError.__init__(out, f"{where}: {e.message}{suffix}")
    return out
