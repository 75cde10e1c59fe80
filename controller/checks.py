"""Health checks over the federation's resources, in the spirit of `linkerd check`. Pure: they read
the resource core's state and derived status, and say what is wrong and how to fix it."""
from __future__ import annotations

from controller.interface import CheckResult
from controller.reconcile.state import FederationState


def resource_checks(state: FederationState, status: dict, imports: dict) -> list[CheckResult]:
    out: list[CheckResult] = []
    by_key = state.cluster_by_key()

    out.append(CheckResult("federation", "at least one member cluster", bool(state.clusters),
                           f"{len(state.clusters)} clusters" if state.clusters else "no Cluster resources",
                           "" if state.clusters else "apply a Cluster manifest, or run `meshtui demo`"))

    bad_exports, conflicts = [], []
    for (ns, name), per_cluster in sorted(state.exports.items()):
        for cluster, _ in sorted(per_cluster.items()):
            for cond in status.get(("ServiceExport", cluster, ns, name), {}).get("conditions", []):
                if cond["type"] == "Valid" and cond["status"] == "False":
                    bad_exports.append(f"{cluster}/{ns}/{name}: {cond['message']}")
                if cond["type"] == "Conflict" and cond["status"] == "True":
                    conflicts.append(f"{cluster}/{ns}/{name}: {cond['reason']}: {cond['message']}")
    out.append(CheckResult("resources", "exports have a Service", not bad_exports,
                           "; ".join(bad_exports) or f"{sum(len(v) for v in state.exports.values())} exports valid",
                           "create the Service in the exporting cluster, or delete the export" if bad_exports else ""))
    out.append(CheckResult("resources", "exports agree with each other (no MCS conflicts)", not conflicts,
                           "; ".join(conflicts) or "no conflicts",
                           "make the conflicting export's Service ports and protocols match the oldest export" if conflicts else ""))

    unknown = []
    for (c, ns, name), pol in sorted(state.policies.items()):
        for t in pol["spec"].get("targets", []):
            if t["clusterKey"] not in by_key:
                unknown.append(f"{c}/{ns}/{name} -> {t['clusterKey']}")
    out.append(CheckResult("resources", "policies name known clusters", not unknown,
                           "; ".join(unknown) or f"{len(state.policies)} policies",
                           "fix spec.targets[].clusterKey (region/zone/group/name) or re-add the cluster" if unknown else ""))

    empty = sorted(f"{c}/{ns}/{name}" for (c, ns, name), imp in imports.items() if not any(p["endpoints"] for p in imp["spec"]["ports"]))
    out.append(CheckResult("resources", "imports have endpoints", not empty, "; ".join(empty) or f"{len(imports)} imports",
                           "check the exporting clusters' gateways and exports" if empty else ""))
    return out
