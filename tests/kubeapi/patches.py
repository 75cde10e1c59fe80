"""PATCH bodies by content type: JSON merge patch, strategic merge (approximated), JSON patch."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from tests.kubeapi.errors import ApiError
from tests.kubeapi.resources import ServedResource

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _unsupported(resource: ServedResource) -> ApiError:
    accepted = [JSON_PATCH, MERGE] + ([STRATEGIC] if resource.builtin else [])
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )


def apply_patch(resource: ServedResource, content_type: str, current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The patched copy of `current`. Strategic merge is served as a JSON merge patch: lists are
    replaced, not merged by key, which is enough for the metadata/spec/status fields meshtui patches."""
    media = content_type.split(";")[0].strip().lower()
    if media == MERGE or (media == STRATEGIC and resource.builtin):
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        return merge_patch(current, patch)
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
        try:
            return jsonpatch.apply_patch(current, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
            raise ApiError(
                422, "Invalid", f"the server rejected our request due to an error in our request: {e}"
            ) from e
    raise _unsupported(resource)
