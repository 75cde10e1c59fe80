"""API errors, each rendered as the `Status` object a real API server sends."""

from __future__ import annotations

from typing import Any

from tests.kubeapi.resources import ServedResource


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            out["details"] = self.details
        return out


def _details(resource: ServedResource, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": resource.plural}
    if resource.group:
        d["group"] = resource.group
    return d


def not_found(resource: ServedResource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name))


def already_exists(resource: ServedResource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists', _details(resource, name))


def conflict(resource: ServedResource, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": {why}',
        _details(resource, name),
    )


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(resource: ServedResource, name: str, field: str, why: str) -> ApiError:
    details = {
        **_details(resource, name),
        "kind": resource.kind,
        "causes": [{"reason": "FieldValueInvalid", "message": why, "field": field}],
    }
    return ApiError(422, "Invalid", f'{resource.kind} "{name}" is invalid: {field}: {why}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(requested: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")
