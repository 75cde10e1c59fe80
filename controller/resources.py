"""The resource core: validated, durable resources, their derived state, and change events.

Everything a write goes through, in order: parse -> validate (pure) -> admit
(defaults, controller-managed annotations, resourceVersion check) -> durable
commit -> in-memory indices -> incremental reconcile -> watch events.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from controller.errors import Conflict, InvalidResource, NotFound
from controller.interface import WatchEvent
from controller.model import BY_NAME, resolve_kind
from controller.model.manifests import parse_documents
from controller.model.validation import FederationView, ResourceKey, describe_key, key_of, validate_apply
from controller.reconcile.imports import ServiceImports, reconcile_service
from controller.reconcile.routes import compute_proxy_config
from controller.reconcile.state import ADDRESSES_ANNOTATION, LOOPBACK_ANNOTATION, FederationState
from controller.store.durable import DurableStore
from controller.watchhub import WatchHub
from proxy.config import ProxyConfig

Obj = dict[str, Any]
IMPORT_API = "multicluster.flomesh.io/v1alpha1"
FIRST_WORKLOAD_IP = 20


def _unversioned(obj: Obj) -> Obj:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class ResourceCore:
    def __init__(self, store_dir: Path | None, *, loopback_base: str = "127.0", trust_domain: str = ""):
        self.store = DurableStore(store_dir)
        self.loopback_base = loopback_base
        self.trust_domain = trust_domain
        self.state = FederationState()
        self.hub = WatchHub()
        self.lock = asyncio.Lock()
        self.imports: dict[tuple[str, str, str], Obj] = {}  # (cluster, ns, name) -> ServiceImport
        self._importers: dict[tuple[str, str], set[str]] = {}  # (ns, name) -> clusters holding its import
        self._uid_counter = 0
        self.outcomes: dict[tuple[str, str], ServiceImports] = {}
        self.status: dict[ResourceKey, Obj] = {}
        self.dirty_clusters: set[str] = set()
        self._listeners: list[Callable[[set[str]], None]] = []
        self._batch_loopbacks: dict[str, str] = {}  # clusters admitted in the current apply
        self._batch_addresses: set[str] = set()  # workload IPs handed out in the current apply

    # start -------------------------------------------------------------------------------
    def load(self) -> None:
        self.store.load()
        self.state = FederationState.build(self.store.objects.values())
        self._reconcile_all()

    def on_change(self, listener: Callable[[set[str]], None]) -> None:
        """`listener(clusters)` is called after each write with the clusters whose routes may differ."""
        self._listeners.append(listener)

    # reads -------------------------------------------------------------------------------
    def _with_status(self, obj: Obj) -> Obj:
        st = self.status.get(key_of(obj))
        return {**obj, "status": st} if st else obj

    def all_objects(self) -> list[Obj]:
        return [self._with_status(o) for o in self.store.objects.values()] + list(self.imports.values())

    def list(self, kind: str, cluster: str | None = None, namespace: str | None = None) -> list[Obj]:
        k = resolve_kind(kind)
        if k.name == "ServiceImport":
            source = self.imports.values()
        else:
            source = (o for o in self.store.objects.values() if o["kind"] == k.name)
        out = [
            self._with_status(o)
            for o in source
            if (cluster is None or o["metadata"].get("cluster") == cluster)
            and (namespace is None or o["metadata"].get("namespace") == namespace)
        ]
        out.sort(key=lambda o: (o["metadata"].get("cluster", ""), o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return out

    def get(self, kind: str, name: str, cluster: str | None = None, namespace: str | None = None) -> Obj:
        k = resolve_kind(kind)
        if k.namespaced:
            ns = namespace or "default"
            if cluster is None:
                matches = [o for o in self.list(k.name, None, ns) if o["metadata"]["name"] == name]
                if len(matches) == 1:
                    return matches[0]
                if len(matches) > 1:
                    raise NotFound(f"{k.name} {ns}/{name} exists in several clusters ({', '.join(o['metadata']['cluster'] for o in matches)}); pass --cluster")
                raise NotFound(f"{k.name} {ns}/{name} not found in any cluster")
            key = (k.name, cluster, ns, name)
        else:
            key = (k.name, "", "", name)
        obj = self.imports.get(key[1:]) if k.name == "ServiceImport" else self.store.objects.get(key)
        if obj is None:
            raise NotFound(f"{describe_key(key)} not found")
        return self._with_status(obj)

    def view(self) -> FederationView:
        return FederationView({n: c.get("spec", {}) for n, c in self.state.clusters.items()}, set(self.store.objects))

    # writes ------------------------------------------------------------------------------
    async def apply(self, manifests: str | list[Obj], *, cluster: str | None, namespace: str | None, source: str = "input") -> list[Obj]:
        docs = parse_documents(manifests, source) if isinstance(manifests, str) else manifests
        if not docs:
            raise InvalidResource(source, "", "no documents to apply")
        async with self.lock:
            objs = validate_apply(docs, self.view(), cluster=cluster, namespace=namespace, source=source)
            revision = self.store.revision + 1
            self._batch_loopbacks, self._batch_addresses = {}, set()
            admitted = [self._admit(o, revision) for o in objs]
            changes = [("put", o) for o in admitted]
            self.store.commit(changes, revision)
            self._after_write(changes, revision)
            return [self._with_status(o) for o in admitted]

    async def delete(self, kind: str, name: str, *, cluster: str | None, namespace: str | None) -> Obj:
        async with self.lock:
            obj = self.get(kind, name, cluster, namespace)
            if BY_NAME[obj["kind"]].derived:
                raise Conflict(f"{obj['kind']} is derived from ServiceExports; delete the export instead")
            stored = self.store.objects[key_of(obj)]
            revision = self.store.revision + 1
            changes = [("delete", stored)]
            self.store.commit(changes, revision)
            self._after_write(changes, revision)
            return obj

    async def sync_external(self, puts: list[Obj], deletes: list[ResourceKey]) -> int:
        """Objects whose source of truth is a Kubernetes-backed cluster's API server (fed by
        controller/kube/sync.py from its watches, and by users' writes there). They skip user
        validation and admission: `puts` are normalized core objects (metadata.cluster set, uid
        and creationTimestamp from Kubernetes; the core takes ownership). They are stored
        durably like user writes, so a cluster's last known state outlives restarts and outages,
        get the core's resourceVersion, and are reconciled like any write. Puts equal to the
        stored object and deletes of absent keys are skipped; returns the changes committed."""
        async with self.lock:
            wanted = {key_of(o): o for o in puts}
            changes: list[tuple[str, Obj]] = []
            for key, obj in wanted.items():
                old = self.store.objects.get(key)
                if old is None or _unversioned(old) != _unversioned(obj):
                    changes.append(("put", obj))
            changes += [("delete", self.store.objects[k]) for k in dict.fromkeys(deletes) if k in self.store.objects and k not in wanted]
            if not changes:
                return 0
            revision = self.store.revision + 1
            for op, obj in changes:
                if op == "put":
                    obj["metadata"]["resourceVersion"] = str(revision)
            self.store.commit(changes, revision)
            self._after_write(changes, revision)
            return len(changes)

    def _admit(self, obj: Obj, revision: int) -> Obj:
        key = key_of(obj)
        old = self.store.objects.get(key)
        md = obj["metadata"]
        sent_rv = md.pop("resourceVersion", None)
        if sent_rv is not None and old is not None and sent_rv != old["metadata"]["resourceVersion"]:
            raise Conflict(
                f"{describe_key(key)} was changed since you read it (your resourceVersion {sent_rv}, now {old['metadata']['resourceVersion']}); read it again and retry"
            )
        if sent_rv is not None and old is None and sent_rv != "0":
            raise Conflict(f"{describe_key(key)} no longer exists (deleted since you read it)")
        md["resourceVersion"] = str(revision)
        if old is not None:
            md["uid"] = old["metadata"]["uid"]
            md["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            same = old.get("spec") == obj.get("spec")
            md["generation"] = old["metadata"].get("generation", 1) + (0 if same else 1)
            for managed in (LOOPBACK_ANNOTATION, ADDRESSES_ANNOTATION):
                if managed in old["metadata"].get("annotations", {}):
                    md.setdefault("annotations", {})[managed] = old["metadata"]["annotations"][managed]
        else:
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_iso()
            md["generation"] = 1
        if obj["kind"] == "Cluster" and not obj["spec"].get("kubeconfig") and not obj["spec"].get("context"):
            annotations = md.setdefault("annotations", {})
            annotations.setdefault(LOOPBACK_ANNOTATION, self._free_loopback())
            self._batch_loopbacks[md["name"]] = annotations[LOOPBACK_ANNOTATION]
        if obj["kind"] == "Workload":
            self._assign_addresses(obj)
        return obj

    def _free_loopback(self) -> str:
        used = {c["metadata"].get("annotations", {}).get(LOOPBACK_ANNOTATION) for c in self.state.clusters.values()}
        used |= set(self._batch_loopbacks.values())
        for i in range(11, 256):
            candidate = f"{self.loopback_base}.{i}"
            if candidate not in used:
                return candidate
        raise InvalidResource("Cluster", "metadata.name", "no free loopback range left for another embedded cluster")

    def _loopback_of(self, cluster: str) -> str | None:
        if cluster in self._batch_loopbacks:
            return self._batch_loopbacks[cluster]
        obj = self.state.clusters.get(cluster)
        return obj["metadata"].get("annotations", {}).get(LOOPBACK_ANNOTATION) if obj else None

    def _assign_addresses(self, workload: Obj) -> None:
        md = workload["metadata"]
        loopback = self._loopback_of(md["cluster"])
        if not loopback:
            return
        annotations = md.setdefault("annotations", {})
        mine = [a for a in annotations.get(ADDRESSES_ANNOTATION, "").split(",") if a]
        want = workload["spec"]["replicas"]
        if len(mine) >= want:
            annotations[ADDRESSES_ANNOTATION] = ",".join(mine[:want])
            return
        used: set[str] = set()
        for (c, _), ws in self.state.workloads.items():
            for w in ws:
                if c == md["cluster"] and key_of(w) != key_of(workload):
                    used.update(w["metadata"].get("annotations", {}).get(ADDRESSES_ANNOTATION, "").split(","))
        used.update(self._batch_addresses)
        for last in range(FIRST_WORKLOAD_IP, 255):
            if len(mine) >= want:
                break
            ip = f"{loopback}.{last}"
            if ip not in used and ip not in mine:
                mine.append(ip)
        annotations[ADDRESSES_ANNOTATION] = ",".join(mine)
        self._batch_addresses.update(mine)

    # reconcile ---------------------------------------------------------------------------
    def _after_write(self, changes: list[tuple[str, Obj]], revision: int) -> None:
        keys: set[tuple[str, str]] = set()
        clusters: set[str] = set()
        everything = False
        for op, obj in changes:
            stored = self.store.objects.get(key_of(obj))
            if op == "put":
                old_obj = self._index_get(obj)  # the indices still hold the previous version
                if old_obj is not None:
                    self.state.remove(old_obj)
                self.state.add(stored)
                self.hub.publish(revision, WatchEvent("MODIFIED" if old_obj else "ADDED", self._with_status(stored)))
            else:
                self.state.remove(obj)
                self.status.pop(key_of(obj), None)
                gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(revision)}}
                self.hub.publish(revision, WatchEvent("DELETED", gone))
            kind, md = obj["kind"], obj["metadata"]
            if kind == "Cluster":
                everything = True
            elif kind in ("ServiceExport", "Service"):
                keys.add((md["namespace"], md["name"]))
                clusters.add(md["cluster"])
            elif kind in ("Workload", "Endpoints", "EndpointSlice", "GlobalTrafficPolicy", "TrafficSplit",
                          "ExternalService"):
                clusters.add(md["cluster"])
        if everything:
            self._reconcile_all(revision)
            clusters = set(self.state.clusters)
        else:
            clusters |= self._reconcile_keys(keys, revision)
        self._update_policy_status(revision)
        self.dirty_clusters |= clusters
        for listener in self._listeners:
            listener(clusters)

    def _index_get(self, obj: Obj) -> Obj | None:
        kind, md = obj["kind"], obj["metadata"]
        c, ns, name = md.get("cluster", ""), md.get("namespace", ""), md["name"]
        st = self.state
        if kind == "Cluster":
            return st.clusters.get(name)
        if kind == "Service":
            return st.services.get((c, ns, name))
        if kind == "ServiceExport":
            return st.exports.get((ns, name), {}).get(c)
        if kind == "GlobalTrafficPolicy":
            return st.policies.get((c, ns, name))
        if kind == "Endpoints":
            return st.endpoints.get((c, ns, name))
        if kind == "Link":
            return st.links.get(name)
        if kind == "ExternalService":
            return st.externals.get((c, ns, name))
        pool = {"TrafficSplit": st.splits.get((c, ns), []), "Workload": st.workloads.get((c, ns), [])}.get(kind)
        if pool is None and kind == "EndpointSlice":
            pool = [o for lst in st.slices.values() for o in lst if o["metadata"]["cluster"] == c and o["metadata"]["namespace"] == ns]
        return next((o for o in pool or [] if o["metadata"]["name"] == name), None)

    def _reconcile_all(self, revision: int | None = None) -> None:
        keys = set(self.state.exports) | {k[1:] for k in self.imports} | set(self.outcomes)
        self._reconcile_keys(keys, revision if revision is not None else self.store.revision)
        self.dirty_clusters |= set(self.state.clusters)
        for name in self.state.clusters:
            self.status.setdefault(("Cluster", "", "", name), {})

    def _reconcile_keys(self, keys: set[tuple[str, str]], revision: int) -> set[str]:
        """Recompute imports of these services; returns clusters whose imports changed."""
        touched: set[str] = set()
        for ns, name in keys:
            outcome = reconcile_service(self.state, ns, name)
            if outcome.exports or outcome.imports:
                self.outcomes[(ns, name)] = outcome
            else:
                self.outcomes.pop((ns, name), None)
            for cluster, exp in outcome.exports.items():
                key = ("ServiceExport", cluster, ns, name)
                if self.status.get(key, {}).get("conditions") != exp.conditions:
                    self.status[key] = {"conditions": exp.conditions}
                    obj = self.store.objects.get(key)
                    if obj is not None:
                        self.hub.publish(revision, WatchEvent("MODIFIED", self._with_status(obj)))
            holders = self._importers.setdefault((ns, name), set())
            for cluster in holders - outcome.imports.keys():
                old = self.imports.pop((cluster, ns, name))
                holders.discard(cluster)
                if cluster in self.state.clusters:
                    touched.add(cluster)
                self.hub.publish(revision, WatchEvent("DELETED", {**old, "metadata": {**old["metadata"], "resourceVersion": str(revision)}}))
            created = now_iso()
            for cluster, spec in outcome.imports.items():
                ikey = (cluster, ns, name)
                old = self.imports.get(ikey)
                if old is not None and old["spec"] == spec:
                    continue
                self._uid_counter += 1
                obj = {
                    "apiVersion": IMPORT_API,
                    "kind": "ServiceImport",
                    "metadata": {
                        "name": name, "namespace": ns, "cluster": cluster, "resourceVersion": str(revision),
                        "uid": old["metadata"]["uid"] if old else f"import-{revision:x}-{self._uid_counter:x}",
                        "creationTimestamp": old["metadata"]["creationTimestamp"] if old else created,
                        "labels": {"meshtui.io/derived": "true"},
                    },
                    "spec": spec,
                }
                self.imports[ikey] = obj
                holders.add(cluster)
                touched.add(cluster)
                self.hub.publish(revision, WatchEvent("MODIFIED" if old else "ADDED", obj))
            if not holders:
                del self._importers[(ns, name)]
        return touched

    def _update_policy_status(self, revision: int) -> None:
        by_key = self.state.cluster_by_key()
        for (c, ns, name), pol in self.state.policies.items():
            unknown = [t["clusterKey"] for t in pol["spec"].get("targets", []) if t["clusterKey"] not in by_key]
            conds = [
                {"type": "Valid", "status": "False", "reason": "UnknownCluster", "message": f"targets name clusters that are not members: {', '.join(unknown)}", "lastTransitionTime": ""}
                if unknown
                else {"type": "Valid", "status": "True", "reason": "Valid", "message": "", "lastTransitionTime": ""}
            ]
            key = ("GlobalTrafficPolicy", c, ns, name)
            if self.status.get(key, {}).get("conditions") != conds:
                self.status[key] = {"conditions": conds}
                self.hub.publish(revision, WatchEvent("MODIFIED", self._with_status(pol)))

    def set_status(self, key: ResourceKey, patch: Obj) -> None:
        """Runtime-owned status fields (cluster addresses, link probes), published as MODIFIED."""
        current = self.status.get(key, {})
        merged = {**current, **patch}
        if merged == current:
            return
        self.status[key] = merged
        obj = self.store.objects.get(key)
        if obj is not None:
            self.hub.publish(self.store.revision, WatchEvent("MODIFIED", self._with_status(obj)))

    # routes ------------------------------------------------------------------------------
    def proxy_config(self, cluster: str, version: int | None = None) -> ProxyConfig:
        if cluster not in self.state.clusters:
            raise NotFound(f"cluster {cluster!r} not found")
        imports = {(ns, n): o["spec"] for (c, ns, n), o in self.imports.items() if c == cluster}
        outcomes = {k: o for k, o in self.outcomes.items() if cluster in o.exports}
        return compute_proxy_config(self.state, cluster, imports, outcomes, trust_domain=self.trust_domain,
                                    version=self.store.revision if version is None else version)
