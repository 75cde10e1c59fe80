"""Text forms of one resource: `d` describe (kubectl-describe like), `y` YAML, `e` editable YAML."""
from __future__ import annotations

from typing import Any

import yaml

from controller.interface import AuditEntry

Obj = dict[str, Any]
SERVER_FIELDS = ("status",)


def to_yaml(obj: Obj) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)


def editable_yaml(obj: Obj) -> str:
    """The object without what the controller derives; resourceVersion stays, so an edit of a
    stale copy is refused instead of overwriting someone else's change."""
    return to_yaml({k: v for k, v in obj.items() if k not in SERVER_FIELDS})


def _flatten(value: Any, prefix: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out.append((prefix, ", ".join(map(str, value)) if isinstance(value, list) else str(value)))


def describe(obj: Obj, history: list[AuditEntry] = ()) -> str:
    md = obj["metadata"]
    lines = [f"Name:         {md['name']}", f"Kind:         {obj['kind']} ({obj.get('apiVersion', '')})"]
    if md.get("cluster"):
        lines.append(f"Cluster:      {md['cluster']}")
    if md.get("namespace"):
        lines.append(f"Namespace:    {md['namespace']}")
    for title, mapping in (("Labels", md.get("labels")), ("Annotations", md.get("annotations"))):
        items = [f"{k}={v}" for k, v in (mapping or {}).items()]
        lines.append(f"{title + ':':<14}{items[0] if items else '<none>'}")
        lines += [" " * 14 + i for i in items[1:]]
    lines.append(f"Created:      {md.get('creationTimestamp', '-')}   resourceVersion {md.get('resourceVersion', '-')}")
    body = obj.get("spec") if "spec" in obj else {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    pairs: list[tuple[str, str]] = []
    _flatten(body, "", pairs)
    lines.append("Spec:" if "spec" in obj else "Body:")
    width = max((len(k) for k, _ in pairs), default=0)
    lines += [f"  {k:<{width}}  {v}" for k, v in pairs] or ["  <empty>"]
    status = obj.get("status") or {}
    conditions = status.get("conditions", [])
    rest = {k: v for k, v in status.items() if k != "conditions"}
    if rest:
        pairs = []
        _flatten(rest, "", pairs)
        lines.append("Status:")
        lines += [f"  {k}: {v}" for k, v in pairs]
    lines.append("Conditions:")
    lines += [f"  {c['type']:<10} {c['status']:<7} {c.get('reason', '')}  {c.get('message', '')}".rstrip() for c in conditions] or ["  <none>"]
    lines.append("Events:")
    lines += [f"  {e.action:<8} by {e.user or '?'}  {e.detail}".rstrip() for e in history] or ["  <none>"]
    return "\n".join(lines)
