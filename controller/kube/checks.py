"""`meshtui check` items about Kubernetes-backed clusters (pure: they read the Clusters and the
status the syncs publish, and say what is wrong and how to fix it)."""

from __future__ import annotations

from typing import Any

from controller.interface import CheckResult
from controller.kube.objects import kubernetes_backed
from controller.reconcile.state import FederationState

GROUP = "kubernetes"
Obj = dict[str, Any]


def _condition(status: Obj, ctype: str) -> Obj | None:
    return next((c for c in status.get("conditions", []) if c.get("type") == ctype), None)


def kube_checks(state: FederationState, status: dict, *, followed: bool, waiting_for: tuple[str, ...] | list[str] = ()) -> list[CheckResult]:
    """`followed`: a running sync follows the clusters (else their status is not live);
    `waiting_for`: clusters never listed yet, which hold back import writes elsewhere."""
    clusters = sorted(n for n, c in state.clusters.items() if kubernetes_backed(c.get("spec")))
    if not clusters:
        return []
    if not followed:
        return [CheckResult(GROUP, "Kubernetes-backed clusters are followed", False,
                            f"{', '.join(clusters)}: nothing follows them in this process; showing their last known state",
                            "run `meshtui controller` (or the TUI) so their API servers are watched", warning=True)]
    st = {n: status.get(("Cluster", "", "", n), {}) for n in clusters}
    out: list[CheckResult] = []

    unreachable = []
    for name in clusters:
        cond = _condition(st[name], "Reachable")
        if cond is not None and cond["status"] == "False":
            unreachable.append(f"{name}: {cond['message']} (since {cond.get('lastTransitionTime') or 'start'})")
    out.append(CheckResult(
        GROUP, "every Kubernetes-backed cluster's API server is reachable", not unreachable,
        "; ".join(unreachable) or f"{len(clusters)} clusters reachable",
        "meshtui keeps their last known state and reconnects by itself; check the Cluster's kubeconfig or context "
        "(`meshtui get cluster NAME -o yaml`), that this machine reaches the API server, and the credentials"
        if unreachable else ""))

    failing = []
    for name in clusters:
        cond = _condition(st[name], "Synced")
        if cond is not None and cond["status"] == "False" and cond.get("reason") != "Unreachable":
            failing.append(f"{name}: {cond['message']}")
    out.append(CheckResult(
        GROUP, "every Kubernetes-backed cluster is in sync", not failing,
        "; ".join(failing) or "watches current",
        "install meshtui's CRDs and RBAC there (`meshtui install --context CTX | kubectl apply -f -`) and check "
        "the credentials of its kubeconfig" if failing else ""))

    missing = [f"{n}: {', '.join(st[n]['kubernetes']['notServed'])}" for n in clusters if st[n].get("kubernetes", {}).get("notServed")]
    out.append(CheckResult(
        GROUP, "meshtui's CRDs are installed", not missing, "; ".join(missing) or "all served",
        "`meshtui install --context CTX | kubectl apply -f -` installs them" if missing else "", warning=bool(missing)))

    refused = [f"{n}: {r}" for n in clusters for r in st[n].get("kubernetes", {}).get("refused", [])]
    out.append(CheckResult(
        GROUP, "objects in Kubernetes fit meshtui's model", not refused, "; ".join(refused) or "all used",
        "fix the named fields with kubectl edit; meshtui ignores these objects until then" if refused else "",
        warning=bool(refused)))

    no_gateway = [n for n in clusters if not (state.clusters[n].get("spec") or {}).get("gatewayHost")]
    out.append(CheckResult(
        GROUP, "Kubernetes-backed clusters name their gateway", not no_gateway,
        f"no spec.gatewayHost: {', '.join(no_gateway)}; their exports are imported nowhere" if no_gateway else "all named",
        "set spec.gatewayHost (and gatewayPort) to the address of the meshtui-gateway Service" if no_gateway else "",
        warning=bool(no_gateway)))

    if waiting_for:
        out.append(CheckResult(
            GROUP, "import writes are not held back", False,
            f"waiting for a first list of {', '.join(waiting_for)} before writing ServiceImports anywhere",
            "meshtui writes imports once it knows every cluster's exports; make those API servers reachable",
            warning=True))
    return out
