"""Validation of manifests: every refusal names the document, the field and the reason.

`validate_apply` is pure: it takes the documents and what the federation already
holds, and returns normalized objects ready to store, or raises InvalidResource
for the first bad document (so nothing of a refused apply is stored).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from pydantic import ValidationError

from controller.errors import InvalidResource

from .kinds import cluster_key
from .meta import ObjectMeta
from .registry import BY_NAME, KINDS, Kind, lookup

ResourceKey = tuple[str, str, str, str]  # (kind, cluster, namespace, name); "" where not applicable


def key_of(obj: dict[str, Any]) -> ResourceKey:
    md = obj["metadata"]
    return (obj["kind"], md.get("cluster") or "", md.get("namespace") or "", md["name"])


def describe_key(key: ResourceKey) -> str:
    kind, cluster, ns, name = key
    where = f"{ns}/{name}" if ns else name
    return f"{kind} {where}" + (f" in {cluster}" if cluster else "")


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _first_error(e: ValidationError, prefix: str) -> tuple[str, str]:
    err = e.errors()[0]
    field = _loc([p for p in err["loc"] if p not in ("function-after",)])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "required field is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return (f"{prefix}.{field}" if field else prefix), msg


@dataclass
class FederationView:
    """What validation needs to know of the stored state."""

    cluster_specs: dict[str, dict]  # cluster name -> spec
    existing: set[ResourceKey]


def validate_apply(
    docs: list[dict[str, Any]],
    view: FederationView,
    *,
    cluster: str | None = None,
    namespace: str | None = None,
    source: str = "input",
    allow_derived: bool = False,
) -> list[dict[str, Any]]:
    clusters = dict(view.cluster_specs)
    normalized: list[tuple[str, dict[str, Any]]] = []
    seen: dict[ResourceKey, str] = {}
    for i, doc in enumerate(docs, 1):
        where = f"{source} document {i}{_raw_label(doc)}"
        obj = _validate_document(doc, where, cluster=cluster, namespace=namespace, allow_derived=allow_derived)
        key = key_of(obj)
        where = f"{source} document {i} ({describe_key(key)})"
        if key in seen:
            raise InvalidResource(where, "metadata.name", f"duplicate of {seen[key]}: the same object twice in one apply")
        seen[key] = where.split(" (")[0]
        if obj["kind"] == "Cluster":
            clusters[obj["metadata"]["name"]] = obj["spec"]
        normalized.append((where, obj))

    keys = {cluster_key(name, spec) for name, spec in clusters.items()}
    for where, obj in normalized:
        md = obj["metadata"]
        if BY_NAME[obj["kind"]].namespaced and md["cluster"] not in clusters:
            raise InvalidResource(where, "metadata.cluster", f"unknown cluster {md['cluster']!r}; members: {', '.join(sorted(clusters)) or 'none'}")
        _check_references(obj, where, keys, clusters)
    return [obj for _, obj in normalized]


def _raw_label(doc: Any) -> str:
    if not isinstance(doc, dict):
        return ""
    md = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name = md.get("name")
    ns = md.get("namespace")
    label = " ".join(str(p) for p in (doc.get("kind"), f"{ns}/{name}" if ns and name else name) if p)
    return f" ({label})" if label else ""


def _check_references(obj: dict, where: str, keys: set[str], clusters: dict[str, dict]) -> None:
    spec = obj.get("spec") or {}
    if obj["kind"] == "GlobalTrafficPolicy":
        for j, t in enumerate(spec.get("targets", [])):
            if t["clusterKey"] not in keys:
                raise InvalidResource(where, f"spec.targets[{j}].clusterKey", f"no member cluster has clusterKey {t['clusterKey']!r}; known: {', '.join(sorted(keys))}")
    elif obj["kind"] == "ServiceExport":
        for j, ck in enumerate(spec.get("targetClusters", [])):
            if ck not in keys and ck not in clusters:
                raise InvalidResource(where, f"spec.targetClusters[{j}]", f"no member cluster has clusterKey {ck!r}; known: {', '.join(sorted(keys))}")
    elif obj["kind"] == "Link":
        for f in ("sourceCluster", "targetCluster"):
            if spec[f] not in clusters:
                raise InvalidResource(where, f"spec.{f}", f"unknown cluster {spec[f]!r}")
        if spec["sourceCluster"] == spec["targetCluster"]:
            raise InvalidResource(where, "spec.targetCluster", "a cluster cannot link to itself")


def _validate_document(doc: dict[str, Any], where: str, *, cluster: str | None, namespace: str | None, allow_derived: bool) -> dict[str, Any]:
    kind_name = doc.get("kind")
    if not kind_name or not isinstance(kind_name, str):
        raise InvalidResource(where, "kind", "required field is missing")
    kind = lookup(kind_name)
    if kind is None or kind.name != kind_name:
        known = ", ".join(k.name for k in KINDS)
        raise InvalidResource(where, "kind", f"unknown kind {kind_name!r}; known kinds: {known}")
    api_version = doc.get("apiVersion")
    if not api_version:
        raise InvalidResource(where, "apiVersion", "required field is missing")
    if api_version not in kind.api_versions:
        raise InvalidResource(where, "apiVersion", f"{kind.name} is not served by {api_version!r}; use one of {', '.join(kind.api_versions)}")
    if kind.derived and not allow_derived:
        raise InvalidResource(where, "kind", f"{kind.name} is derived from ServiceExports by the controller and cannot be written")

    raw_md = doc.get("metadata")
    if not isinstance(raw_md, dict):
        raise InvalidResource(where, "metadata.name", "required field is missing")
    try:
        md = ObjectMeta.model_validate(raw_md)
    except ValidationError as e:
        raise InvalidResource(where, *_first_error(e, "metadata")) from None
    meta = md.model_dump(exclude_none=True)
    if kind.namespaced:
        meta["namespace"] = md.namespace or namespace or "default"
        meta["cluster"] = md.cluster or cluster
        if not meta["cluster"]:
            raise InvalidResource(where, "metadata.cluster", f"{kind.name} belongs to one cluster: pass --cluster NAME or set metadata.cluster")
    else:
        meta.pop("namespace", None)
        meta.pop("cluster", None)
    meta.pop("resourceVersion", None)

    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind.name, "metadata": meta}
    if md.resourceVersion:
        obj["metadata"]["resourceVersion"] = md.resourceVersion
    if kind.spec is not None:
        spec = doc.get("spec")
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise InvalidResource(where, "spec", f"expected a mapping, got {type(spec).__name__}")
        try:
            obj["spec"] = kind.spec.model_validate(spec).model_dump(mode="json", exclude_none=True)
        except ValidationError as e:
            raise InvalidResource(where, *_first_error(e, "spec")) from None
    else:
        body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata", "status")}
        try:
            obj.update(kind.body.model_validate(body).model_dump(mode="json", exclude_none=True))
        except ValidationError as e:
            field, msg = _first_error(e, "")
            raise InvalidResource(where, field.lstrip("."), msg) from None
    if allow_derived and isinstance(doc.get("status"), dict):
        obj["status"] = doc["status"]
    return obj
