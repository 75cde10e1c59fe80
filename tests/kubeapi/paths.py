"""Request paths -> what they address: a discovery document, a collection, an object or its status."""

from __future__ import annotations

from dataclasses import dataclass

from tests.kubeapi.errors import ApiError
from tests.kubeapi.resources import BY_PATH, ServedResource, group_versions


@dataclass(frozen=True, slots=True)
class Discovery:
    document: str  # version | api | apis | group | resources
    group: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    resource: ServedResource
    namespace: str | None  # None: every namespace (collections) or a cluster-scoped resource
    name: str | None  # None: the collection
    subresource: str | None = None  # "status"


def not_served() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def parse(path: str) -> Discovery | Target:
    parts = [p for p in path.split("/") if p]
    if parts == ["version"]:
        return Discovery("version")
    if parts == ["api"]:
        return Discovery("api")
    if parts == ["apis"]:
        return Discovery("apis")
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    elif len(parts) == 2 and parts[0] == "apis" and parts[1] in group_versions():
        return Discovery("group", parts[1])
    else:
        raise not_served()
    if group and version not in group_versions().get(group, []):
        raise not_served()
    if not rest:
        return Discovery("resources", group, version)
    return _target(group, version, rest)


def _target(group: str, version: str, rest: list[str]) -> Target:
    def served(plural: str) -> ServedResource | None:
        return BY_PATH.get((group, version, plural))

    # namespaces/<ns>/<plural>[/<name>[/<sub>]] unless <plural> is not a namespaced resource,
    # in which case it is the namespace object's own subresource (namespaces/<name>/status).
    if rest[0] == "namespaces" and len(rest) >= 3 and (r := served(rest[2])) is not None and r.namespaced:
        ns, tail = rest[1], rest[3:]
        if len(tail) > 2 or (len(tail) == 2 and tail[1] != "status"):
            raise not_served()
        return Target(r, ns, tail[0] if tail else None, tail[1] if len(tail) == 2 else None)
    r = served(rest[0])
    if r is None or len(rest) > 3 or (len(rest) == 3 and rest[2] != "status"):
        raise not_served()
    if len(rest) == 1:
        return Target(r, None, None)
    if r.namespaced:
        raise not_served()
    return Target(r, None, rest[1], rest[2] if len(rest) == 3 else None)
