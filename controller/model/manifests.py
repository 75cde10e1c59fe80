"""Turning text into documents: YAML or JSON, one or many, with errors that say where."""
from __future__ import annotations

import json
from typing import Any

import yaml

from controller.errors import InvalidResource


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (kubectl does too)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_documents(text: str, source: str = "input") -> list[dict[str, Any]]:
    """Every non-empty document of `text`; a JSON `List` (kubectl's `-o json` of many) is unpacked."""
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidResource(source, "", f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        docs = data if isinstance(data, list) else [data]
    else:
        try:
            docs = [d for d in yaml.load_all(text, Loader=_UniqueKeyLoader)]
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or str(e)
            raise InvalidResource(source, "", f"malformed YAML{where}: {problem}") from None
    out: list[dict[str, Any]] = []
    for i, doc in enumerate(docs, 1):
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
            continue
        if not isinstance(doc, dict):
            raise InvalidResource(f"{source} document {i}", "", f"expected a mapping with apiVersion, kind, metadata; got {type(doc).__name__}")
        out.append(doc)
    return out
