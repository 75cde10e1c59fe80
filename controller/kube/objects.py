"""Kubernetes objects <-> the resource core's objects (pure).

A Kubernetes object of a member cluster becomes a core object with `metadata.cluster` set, its
body checked against meshtui's model (defaults filled in, as for an apply), and Kubernetes'
identity kept (uid, creationTimestamp: the oldest export wins a conflict). Server-owned and
noisy metadata (resourceVersion, managedFields, kubectl's last-applied annotation) and the
Kubernetes status (meshtui derives its own) are dropped.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from controller.errors import InvalidResource
from controller.model.registry import BY_NAME

Obj = dict[str, Any]
KEPT_METADATA = ("name", "namespace", "labels", "annotations", "uid", "creationTimestamp", "generation")
WRITTEN_METADATA = ("name", "namespace", "labels", "annotations")
DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
_SERVER_FIELDS = ("apiVersion", "kind", "metadata", "status")


def kubernetes_backed(cluster_spec: Obj | None) -> bool:
    """A Cluster with a kubeconfig or a context is reached through its API server."""
    return isinstance(cluster_spec, dict) and bool(cluster_spec.get("kubeconfig") or cluster_spec.get("context"))


def describe(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{md.get('name')}"


def _first_error(e: ValidationError, prefix: str) -> tuple[str, str]:
    err = e.errors()[0]
    field = prefix
    for part in err["loc"]:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field, "unknown field" if err["type"] == "extra_forbidden" else err["msg"]


def to_core(cluster: str, obj: Obj) -> Obj:
    """`obj`, read from `cluster`'s API server, as the resource core keeps it; InvalidResource
    names the object and the field when its body does not fit meshtui's model."""
    where = f"cluster {cluster}: {describe(obj)}"
    kind = BY_NAME.get(obj.get("kind", ""))
    if kind is None or kind.derived or obj.get("apiVersion") not in kind.api_versions:
        raise InvalidResource(where, "apiVersion", f"{obj.get('apiVersion')} {obj.get('kind')} is not a kind meshtui follows")
    md = obj.get("metadata") or {}
    meta = {k: copy.deepcopy(md[k]) for k in KEPT_METADATA if md.get(k) not in (None, "", {})}
    if "annotations" in meta:
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k not in DROPPED_ANNOTATIONS}
        if not meta["annotations"]:
            del meta["annotations"]
    if kind.namespaced:
        meta["cluster"] = cluster
    else:
        meta.pop("namespace", None)
    out: Obj = {"apiVersion": obj["apiVersion"], "kind": kind.name, "metadata": meta}
    try:
        if kind.spec is not None:
            out["spec"] = kind.spec.model_validate(obj.get("spec") or {}).model_dump(mode="json", exclude_none=True)
        else:
            body = {k: v for k, v in obj.items() if k not in _SERVER_FIELDS}
            out.update(kind.body.model_validate(body).model_dump(mode="json", exclude_none=True))  # type: ignore[union-attr]
    except ValidationError as e:
        raise InvalidResource(where, *_first_error(e, "spec" if kind.spec is not None else "")) from None
    if kind.name == "Link" and out["spec"]["sourceCluster"] != cluster:
        raise InvalidResource(where, "spec.sourceCluster", f"a Link kept in cluster {cluster} must start there (sourceCluster {cluster})")
    return out


def to_kube(obj: Obj) -> Obj:
    """A validated core object as the manifest written to its cluster's API server: its body,
    and of its metadata only what a user owns (no cluster, versions or server fields)."""
    md = obj["metadata"]
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("metadata", "status")}
    out["metadata"] = {k: copy.deepcopy(md[k]) for k in WRITTEN_METADATA if md.get(k) not in (None, "", {})}
    return out


def content(obj: Obj) -> Obj:
    """`obj` without its resourceVersion, for comparing what two versions say."""
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}
