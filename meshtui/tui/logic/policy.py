"""GlobalTrafficPolicy logic for the editor: the effective share of a cluster's requests each
cluster receives, and validation of a draft as the user types."""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from controller.model.kinds import GlobalTrafficPolicySpec

LB_TYPES = ("Locality", "FailOver", "ActiveActive")
LOCAL_WEIGHT = 100
DEFAULT_WEIGHT = {"FailOver": 1, "ActiveActive": 100}


def effective_share(lb_type: str, local: str, local_ready: bool, targets: list[tuple[str, int | None]],
                    reachable: set[str] | None = None) -> dict[str, float]:
    """Fraction of `local`'s requests each cluster serves while every endpoint is healthy.

    `targets` are (cluster name, weight or None) in spec order; `reachable` the clusters that
    export the service to `local` (None: all). Empty result: every request fails (503).
    Locality: 100% local, or 100% the pinned target. FailOver: 100% local when it has
    endpoints, else split by weight among the targets. ActiveActive: local at 100 plus each
    target at its weight, normalized."""
    def usable(name: str) -> bool:
        return name != local and (reachable is None or name in reachable)

    if lb_type == "Locality":
        if targets and targets[0][0] != local:
            return {targets[0][0]: 1.0} if usable(targets[0][0]) else {}
        return {local: 1.0} if local_ready else {}
    default = DEFAULT_WEIGHT.get(lb_type, 1)
    weights: dict[str, float] = {}
    if lb_type == "FailOver" and local_ready:
        return {local: 1.0}
    if lb_type == "ActiveActive" and local_ready:
        weights[local] = LOCAL_WEIGHT
    for name, weight in targets:
        w = default if weight is None else weight
        if usable(name) and w > 0:
            weights[name] = weights.get(name, 0) + w
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()} if total else {}


@dataclass(frozen=True)
class TargetDraft:
    cluster_key: str
    enabled: bool
    weight_text: str


def validate_draft(lb_type: str, targets: list[TargetDraft], known_keys: set[str]) -> tuple[dict | None, list[str]]:
    """(spec ready to apply, []) or (None, messages naming the field and the reason)."""
    errors: list[str] = []
    chosen: list[dict] = []
    for t in targets:
        if not t.enabled:
            continue
        entry: dict = {"clusterKey": t.cluster_key}
        text = t.weight_text.strip()
        if text:
            try:
                entry["weight"] = int(text)
            except ValueError:
                errors.append(f"weight of {t.cluster_key}: {text!r} is not a whole number")
                continue
            if entry["weight"] < 0:
                errors.append(f"weight of {t.cluster_key}: must be 0 or more, got {entry['weight']}")
                continue
        if t.cluster_key not in known_keys:
            errors.append(f"target {t.cluster_key}: no member cluster has this clusterKey")
        chosen.append(entry)
    spec = {"lbType": lb_type, "targets": chosen}
    try:
        GlobalTrafficPolicySpec.model_validate(spec)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        errors.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return (None, errors) if errors else (spec, [])
