"""Every Kubernetes API verb the controller uses, on which resource, and why: the one table the
install manifests' RBAC is generated from (controller/install/rbac.py). It is composed of the
same constants the callers use (the sync's watched and written types, users' writable types,
leader election's Lease), and a test runs the whole controller against an API server and
compares the requests it made with this table, so neither can drift."""

from __future__ import annotations

from dataclasses import dataclass

from controller.kube.resources import IMPORTS, LEASES, NAMESPACES, WATCHED, WITH_STATUS, WRITABLE, ResourceType


@dataclass(frozen=True, slots=True)
class Grant:
    resource: ResourceType
    verbs: tuple[str, ...]
    why: str
    subresource: str = ""
    lease: bool = False  # granted by a Role in the controller's own namespace, for its Lease only

    @property
    def rbac_resource(self) -> str:
        return f"{self.resource.plural}/{self.subresource}" if self.subresource else self.resource.plural


GRANTS: tuple[Grant, ...] = (
    *(Grant(r, ("list", "watch"), "followed in every member cluster (controller/kube/sync.py)") for r in WATCHED),
    Grant(IMPORTS, ("list", "watch"), "the ServiceImports meshtui wrote, followed to repair drift"),
    Grant(IMPORTS, ("get", "create", "update", "delete"), "derived ServiceImports written and removed"),
    *(Grant(r, ("get",), "read before its status is written") for r in WITH_STATUS),
    *(Grant(r, ("update",), "derived conditions written back", subresource="status") for r in WITH_STATUS),
    Grant(NAMESPACES, ("create",), "a namespace created where an import or a user's object needs it"),
    *(Grant(r, ("get", "create", "update", "delete"), "users' writes through meshtui (apply/delete)") for r in WRITABLE),
    Grant(LEASES, ("create",), "leader election: the Lease is created by the first controller", lease=True),
    Grant(LEASES, ("get", "update"), "leader election: acquire, renew and release the Lease", lease=True),
)


def cluster_verbs() -> dict[tuple[str, str], set[str]]:
    """(API group, resource[/subresource]) -> verbs, for the ClusterRole."""
    out: dict[tuple[str, str], set[str]] = {}
    for g in GRANTS:
        if not g.lease:
            out.setdefault((g.resource.group, g.rbac_resource), set()).update(g.verbs)
    return out


def lease_grants() -> tuple[Grant, ...]:
    return tuple(g for g in GRANTS if g.lease)
