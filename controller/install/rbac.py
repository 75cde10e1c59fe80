"""Least-privilege RBAC for the controller, generated from controller/kube/permissions.py: a
ClusterRole with exactly the verbs it uses on exactly those resources, and a Role in its own
namespace for its Lease alone."""

from __future__ import annotations

from typing import Any

from controller.kube.permissions import cluster_verbs, lease_grants

Obj = dict[str, Any]
CONTROLLER = "meshtui-controller"


def cluster_rules() -> list[Obj]:
    """One rule per API group and verb set, resources sorted, so the output is stable."""
    by_group_verbs: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), verbs in sorted(cluster_verbs().items()):
        by_group_verbs.setdefault((group, tuple(sorted(verbs))), []).append(resource)
    return [{"apiGroups": [group], "resources": sorted(resources), "verbs": list(verbs)}
            for (group, verbs), resources in sorted(by_group_verbs.items())]  # fmt: skip


def lease_rules(lease_name: str) -> list[Obj]:
    """`create` cannot be limited to a name (the object does not exist yet); the rest can."""
    out = []
    for g in lease_grants():
        rule: Obj = {"apiGroups": [g.resource.group], "resources": [g.rbac_resource], "verbs": sorted(g.verbs)}
        if "create" not in g.verbs:
            rule["resourceNames"] = [lease_name]
        out.append(rule)
    return out


def rbac(namespace: str, lease_name: str, labels: dict[str, str]) -> list[Obj]:
    subject = [{"kind": "ServiceAccount", "name": CONTROLLER, "namespace": namespace}]
    meta = {"labels": dict(labels)}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": CONTROLLER, "namespace": namespace, **meta}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": CONTROLLER, **meta},
         "rules": cluster_rules()},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": CONTROLLER, **meta},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CONTROLLER}, "subjects": subject},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": f"{CONTROLLER}-lease", "namespace": namespace, **meta}, "rules": lease_rules(lease_name)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": f"{CONTROLLER}-lease", "namespace": namespace, **meta},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{CONTROLLER}-lease"},
         "subjects": subject},
    ]  # fmt: skip
