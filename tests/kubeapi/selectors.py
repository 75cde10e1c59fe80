"""Label and field selectors, as the `labelSelector` / `fieldSelector` query parameters spell them."""

from __future__ import annotations

import re
from typing import Any, Callable

from tests.kubeapi.errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_EQUALITY = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^)]*)\)$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")


def _split_requirements(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    if m := _EQUALITY.match(text):
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _SET.match(text):
        key, op, values_text = m.groups()
        values = {v.strip() for v in values_text.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EXISTS.match(text):
        negated, key = m.groups()
        return (lambda labels: key not in labels) if negated else (lambda labels: key in labels)
    raise bad_request(f"unable to parse requirement: {text!r}")


def label_selector(text: str | None) -> Predicate:
    """`app=web,tier in (a,b),!legacy` -> predicate over an object's metadata.labels."""
    if not text:
        return lambda obj: True
    reqs = [_requirement(r) for r in _split_requirements(text)]
    return lambda obj: all(req(obj.get("metadata", {}).get("labels") or {}) for req in reqs)


_FIELDS = {"metadata.name": "name", "metadata.namespace": "namespace"}


def field_selector(text: str | None) -> Predicate:
    """Only metadata.name and metadata.namespace, with = / == / !=, as for custom resources."""
    if not text:
        return lambda obj: True
    checks = []
    for req in _split_requirements(text):
        m = _EQUALITY.match(req)
        if not m or m.group(1) not in _FIELDS:
            raise bad_request(f'field label not supported: "{req}"')
        field, op, value = m.groups()
        checks.append((_FIELDS[field], op == "!=", value))
    return lambda obj: all((obj.get("metadata", {}).get(attr, "") == value) != negate for attr, negate, value in checks)
