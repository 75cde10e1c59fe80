"""What an API server does with a manifest, given the CRDs `meshtui install` prints: find the
CRD of its apiVersion/kind (built-in kinds are known), check its metadata, and validate it
against the CRD's structural schema, translated to JSON Schema as the API server reads it
(nullable, int-or-string, preserve-unknown-fields; unknown fields refused, as under kubectl's
default strict field validation). Uses the `jsonschema` package."""

from __future__ import annotations

from typing import Any

import jsonschema

Obj = dict[str, Any]
BUILTIN = {("v1", "Service"), ("v1", "Namespace"), ("v1", "Endpoints"), ("discovery.k8s.io/v1", "EndpointSlice"),
           ("apps/v1", "Deployment"), ("v1", "ConfigMap"), ("v1", "Pod")}  # fmt: skip
_LABEL_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
METADATA: Obj = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
        "namespace": {"type": "string", "maxLength": 63, "pattern": _DNS_SUBDOMAIN},
        "labels": _LABEL_MAP, "annotations": _LABEL_MAP, "generateName": {"type": "string"}, "uid": {"type": "string"},
        "resourceVersion": {"type": "string"}, "generation": {"type": "integer"}, "creationTimestamp": {},
        "deletionTimestamp": {}, "finalizers": {"type": "array"}, "ownerReferences": {"type": "array"},
        "managedFields": {"type": "array"},
    },
}  # fmt: skip


class Refused(Exception):
    pass


def json_schema(node: Obj) -> Obj:
    """A structural schema node as the JSON Schema it means."""
    out: Obj = {}
    kind = node.get("type")
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if kind:
        out["type"] = [kind, "null"] if node.get("nullable") else kind
    if "properties" in node:
        out["properties"] = {k: json_schema(v) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = json_schema(node["items"])
    if "additionalProperties" in node:
        out["additionalProperties"] = json_schema(node["additionalProperties"])
    elif kind == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    for key in ("required", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems"):
        if key in node:
            out[key] = node[key]
    if node.get("nullable") and "enum" in out:
        out["enum"] = [*out["enum"], None]
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(flag) is True:
            out[flag] = out.pop(bound)
    for junctor in ("anyOf", "allOf", "oneOf"):
        if junctor in node:
            out.setdefault("allOf", []).append({junctor: [json_schema(n) for n in node[junctor]]})
    if "not" in node:
        out["not"] = json_schema(node["not"])
    return out


class ApiServerModel:
    def __init__(self, crds: list[Obj]):
        self.schemas: dict[tuple[str, str], Obj] = {}
        for crd in crds:
            spec = crd["spec"]
            for v in spec["versions"]:
                schema = json_schema(v["schema"]["openAPIV3Schema"])
                schema["properties"]["metadata"] = METADATA
                jsonschema.Draft202012Validator.check_schema(schema)
                self.schemas[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = schema

    def served(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.schemas or (api_version, kind) in BUILTIN

    def admit(self, doc: Any) -> None:
        """Raises Refused with the API server's reason."""
        if not isinstance(doc, dict):
            raise Refused("not an object")
        key = (doc.get("apiVersion", ""), doc.get("kind", ""))
        schema = self.schemas.get(key)
        if schema is None and key not in BUILTIN:
            raise Refused(f'no matches for kind "{key[1]}" in version "{key[0]}"')
        if schema is None:  # a built-in kind: only its metadata is checked here
            schema = {"type": "object", "properties": {"metadata": METADATA}, "required": ["metadata"]}
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            raise Refused(f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}")
