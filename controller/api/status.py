"""Error bodies: every failure is a Kubernetes-like Status object with the HTTP code it is sent with."""
from __future__ import annotations

from aiohttp import web

from controller.errors import MeshError

# aiohttp's own refusals (no such route, wrong method, body too large) in the same shape
HTTP_REASONS = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}


class BadRequest(MeshError):
    """The request itself is malformed (not JSON, wrong field types, bad query parameter)."""

    status = 400
    reason = "BadRequest"


def status_response(err: MeshError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(err.to_dict(), status=err.status, headers=headers)


def from_http_exception(exc: web.HTTPException) -> MeshError:
    err = MeshError(exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason)
    err.status = exc.status
    err.reason = HTTP_REASONS.get(exc.status, exc.reason.replace(" ", ""))
    return err
