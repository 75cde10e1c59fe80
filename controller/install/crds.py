"""CustomResourceDefinitions for every custom resource meshtui reads or writes in a member
cluster (controller/kube/resources.py CUSTOM_RESOURCES), with OpenAPI v3 schemas generated from
meshtui's pydantic models (controller/model/kinds.py) and a status subresource."""

from __future__ import annotations

import copy
from typing import Any

from controller.install.schema import structural
from controller.kube.resources import CUSTOM_RESOURCES, ResourceType
from controller.model.meta import Condition
from controller.model.registry import BY_NAME

Obj = dict[str, Any]
VERSION = "v1alpha1"
LABELS = {"app.kubernetes.io/name": "meshtui", "app.kubernetes.io/part-of": "meshtui"}

# Rules the models check in code, as value validations (allOf) the API server evaluates:
# GlobalTrafficPolicySpec._locality_targets (Locality allows at most one target) and
# ExportRule._absolute (a rule's path starts with /).
EXTRA_RULES: dict[str, list[Obj]] = {
    "GlobalTrafficPolicy": [{"anyOf": [
        {"required": ["lbType"], "properties": {"lbType": {"enum": ["FailOver", "ActiveActive"]}}},
        {"properties": {"targets": {"maxItems": 1}}},
    ]}],
    "ServiceExport": [{"properties": {"rules": {"items": {"properties": {"path": {"pattern": "^/"}}}}}}],
}  # fmt: skip


def _condition_column(ctype: str) -> Obj:
    return {"name": ctype, "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{ctype}")].status'}


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
COLUMNS: dict[str, list[Obj]] = {
    "ServiceExport": [_condition_column("Valid"), _condition_column("Conflict"), AGE],
    "ServiceImport": [{"name": "Type", "type": "string", "jsonPath": ".spec.type"}, AGE],
    "GlobalTrafficPolicy": [{"name": "LbType", "type": "string", "jsonPath": ".spec.lbType"}, _condition_column("Valid"), AGE],
    "TrafficSplit": [{"name": "Service", "type": "string", "jsonPath": ".spec.service"}, AGE],
    "Link": [{"name": "Source", "type": "string", "jsonPath": ".spec.sourceCluster"},
             {"name": "Target", "type": "string", "jsonPath": ".spec.targetCluster"}, AGE],
}  # fmt: skip


def status_schema() -> Obj:
    return {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {"conditions": {"type": "array", "items": structural(Condition)}},
    }


def object_schema(kind: str) -> Obj:
    """The openAPIV3Schema of a whole object of `kind`."""
    model = BY_NAME[kind].spec
    assert model is not None, f"{kind} has no spec model"
    spec = structural(model)
    if kind in EXTRA_RULES:
        spec["allOf"] = copy.deepcopy(EXTRA_RULES[kind])
    schema: Obj = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status_schema(),
        },
    }
    if spec.get("required"):  # a spec with required fields must be there
        schema["required"] = ["spec"]
    return schema


def crd(rt: ResourceType, *, primary: bool) -> Obj:
    """`primary`: the kind's first group, which alone gets its short names (they would clash)."""
    kind = BY_NAME[rt.kind]
    names: Obj = {"plural": rt.plural, "singular": rt.kind.lower(), "kind": rt.kind, "listKind": f"{rt.kind}List",
                  "categories": ["meshtui"]}  # fmt: skip
    if primary and kind.short_names:
        names["shortNames"] = list(kind.short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{rt.plural}.{rt.group}", "labels": dict(LABELS)},
        "spec": {
            "group": rt.group,
            "scope": "Namespaced" if rt.namespaced else "Cluster",
            "names": names,
            "versions": [{
                "name": rt.version,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": object_schema(rt.kind)},
                "additionalPrinterColumns": COLUMNS.get(rt.kind, [AGE]),
            }],
        },
    }  # fmt: skip


def crds(skip_groups: frozenset[str] = frozenset()) -> list[Obj]:
    seen: set[str] = set()
    out = []
    for rt in CUSTOM_RESOURCES:
        primary = rt.kind not in seen
        seen.add(rt.kind)
        if rt.group not in skip_groups:
            out.append(crd(rt, primary=primary))
    return out


def crd_groups() -> list[str]:
    return sorted({rt.group for rt in CUSTOM_RESOURCES})
