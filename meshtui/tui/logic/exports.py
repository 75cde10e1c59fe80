"""ServiceExport manifests the Exports view writes: the default export of a Service, and the
form's draft checked as the user types."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from controller.model.kinds import ServiceExportSpec

Obj = dict[str, Any]
EXPORT_API = "flomesh.io/v1alpha1"
LOAD_BALANCERS = ("RoundRobinLoadBalancer", "HashingLoadBalancer", "LeastWorkLoadBalancer")
PATH_TYPES = ("Prefix", "Exact")


def export_manifest(cluster: str, namespace: str, name: str, spec: dict, resource_version: str | None = None) -> Obj:
    md: dict = {"name": name, "namespace": namespace, "cluster": cluster}
    if resource_version:
        md["resourceVersion"] = resource_version
    return {"apiVersion": EXPORT_API, "kind": "ServiceExport", "metadata": md, "spec": spec}


def default_export_spec(service: Obj) -> dict:
    """FSM's walk-through shape: one Prefix rule per TCP port under /<cluster>/<service>, any caller."""
    md = service["metadata"]
    base = f"/{md['cluster']}/{md['name']}"
    ports = [p["port"] for p in (service.get("spec") or {}).get("ports", []) if p.get("protocol", "TCP") == "TCP"]
    rules = [{"portNumber": p, "path": base if i == 0 else f"{base}-{p}", "pathType": "Prefix"} for i, p in enumerate(ports)]
    return {"rules": rules, "serviceAccountName": "*"}


@dataclass(frozen=True)
class RuleDraft:
    port: str
    path: str
    path_type: str


def validate_export_draft(rules: list[RuleDraft], service_account: str, audience: list[str], load_balancer: str) -> tuple[dict | None, list[str]]:
    errors = []
    parsed = []
    for i, r in enumerate(rules, 1):
        try:
            port = int(r.port.strip())
        except ValueError:
            errors.append(f"rule {i}: port {r.port!r} is not a number")
            continue
        parsed.append({"portNumber": port, "path": r.path.strip() or "/", "pathType": r.path_type})
    if not parsed and not errors:
        errors.append("at least one rule (port and path) is needed")
    spec = {"rules": parsed, "serviceAccountName": service_account.strip() or "*", "targetClusters": audience,
            "loadBalancer": load_balancer}
    try:
        ServiceExportSpec.model_validate(spec)
    except ValidationError as e:
        for err in e.errors():
            loc = err["loc"]
            where = f"rule {loc[1] + 1} {loc[2]}" if loc[0] == "rules" and len(loc) > 2 else ".".join(map(str, loc))
            errors.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return (None, errors) if errors else (spec, [])
