"""Pydantic models -> Kubernetes structural OpenAPI v3 schemas, for CRDs (pure).

Kubernetes accepts a subset of OpenAPI v3 (a "structural" schema): no $ref (definitions are
inlined), a `type` on every node, `nullable: true` instead of a null alternative,
`x-kubernetes-int-or-string` for int|str, `x-kubernetes-preserve-unknown-fields` where extra
fields are allowed (models with extra="allow", free-form dicts), and OpenAPI 3.0's boolean
`exclusiveMinimum`. Models that refuse unknown fields (extra="forbid") become objects without
that marker: the API server drops unknown fields, or refuses them under strict field validation
(kubectl's default).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]
_SCALAR_KEYS = ("enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "format", "description")


class NotStructural(TypeError):
    """A model uses a type a structural schema cannot express."""


def structural(model: type[BaseModel]) -> Schema:
    raw = model.model_json_schema(mode="validation")
    return _convert(raw, raw.get("$defs", {}), model.__name__)


def _convert(node: Schema, defs: dict[str, Schema], where: str) -> Schema:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
    if "anyOf" in node:
        return _alternatives(node, defs, where)
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
    kind = node.get("type")
    if kind == "object":
        return _object(node, defs, where)
    if kind == "array":
        out: Schema = {"type": "array", "items": _convert(node.get("items", {}), defs, f"{where}[]")}
        for key in ("minItems", "maxItems"):
            if key in node:
                out[key] = node[key]
        return out
    if kind in ("string", "integer", "number", "boolean"):
        out = {"type": kind, **{k: node[k] for k in _SCALAR_KEYS if k in node}}
        if "exclusiveMinimum" in node:  # JSON Schema 2020's number -> OpenAPI 3.0's flag
            out.update(minimum=node["exclusiveMinimum"], exclusiveMinimum=True)
        if "exclusiveMaximum" in node:
            out.update(maximum=node["exclusiveMaximum"], exclusiveMaximum=True)
        if node.get("default") is not None:
            out["default"] = node["default"]
        return out
    if not node:  # Any
        return {"x-kubernetes-preserve-unknown-fields": True}
    raise NotStructural(f"{where}: cannot express {node} in a structural schema")


def _alternatives(node: Schema, defs: dict[str, Schema], where: str) -> Schema:
    options = [o for o in node["anyOf"] if o.get("type") != "null"]
    nullable = len(options) < len(node["anyOf"])
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    kinds = sorted(o.get("type", "") for o in options)
    if len(options) == 1:
        out = _convert({**options[0], **rest}, defs, where)
    elif kinds == ["integer", "string"]:
        out = {"x-kubernetes-int-or-string": True}
    else:
        raise NotStructural(f"{where}: cannot express a choice of {kinds} in a structural schema")
    if nullable:
        out["nullable"] = True
        out.pop("default", None)
    return out


def _object(node: Schema, defs: dict[str, Schema], where: str) -> Schema:
    out: Schema = {"type": "object"}
    props = node.get("properties")
    if props:
        out["properties"] = {name: _convert(p, defs, f"{where}.{name}") for name, p in props.items()}
        if node.get("required"):
            out["required"] = list(node["required"])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra:
        out["additionalProperties"] = _convert(extra, defs, f"{where}.*")
    elif extra is True or (not props and extra is None):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out
