"""Errors the Controller interface raises. Each carries an HTTP status for the API
and a one-line message for the CLI; the remote client turns API errors back into them."""
from __future__ import annotations


class MeshError(Exception):
    status = 500
    reason = "InternalError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict:
        return {"kind": "Status", "status": "Failure", "reason": self.reason, "code": self.status, "message": self.message}


class BadRequest(MeshError):
    """A request that is malformed as a request (not as a manifest): bad JSON body, bad query."""

    status = 400
    reason = "BadRequest"


class InvalidResource(MeshError):
    """A manifest was refused. `where` names the document, `field` the path inside it."""

    status = 422
    reason = "Invalid"

    def __init__(self, where: str, field: str, why: str):
        self.where, self.field, self.why = where, field, why
        at = f" field {field}" if field else ""
        super().__init__(f"{where}:{at}: {why}" if at else f"{where}: {why}")


class NotFound(MeshError):
    status = 404
    reason = "NotFound"


class Conflict(MeshError):
    """A stale resourceVersion, or a write to a derived resource."""

    status = 409
    reason = "Conflict"


class Gone(MeshError):
    """A watch asked for history that is no longer kept, or fell too far behind: list again."""

    status = 410
    reason = "Gone"


class Unauthorized(MeshError):
    status = 401
    reason = "Unauthorized"


class Forbidden(MeshError):
    status = 403
    reason = "Forbidden"


class StoreCorrupt(MeshError):
    status = 500
    reason = "StoreCorrupt"


class StoreWriteFailed(MeshError):
    """The state dir could not be written (disk full, permissions): nothing was changed."""

    status = 507
    reason = "InsufficientStorage"


class Unavailable(MeshError):
    status = 503
    reason = "Unavailable"


ERRORS_BY_REASON = {
    cls.reason: cls
    for cls in (MeshError, BadRequest, InvalidResource, NotFound, Conflict, Gone, Unauthorized, Forbidden, StoreCorrupt, StoreWriteFailed, Unavailable)
}


def error_from_dict(d: dict) -> MeshError:
    cls = ERRORS_BY_REASON.get(d.get("reason", ""), MeshError)
    err = MeshError.__new__(cls)
    MeshError.__init__(err, d.get("message", "unknown error"))
    return err
