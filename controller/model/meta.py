"""Object metadata and MCS-style conditions shared by every kind."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class ObjectMeta(BaseModel):
    # Kubernetes sends many more metadata fields (uid, managedFields, ...): keep them, check ours.
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)
    namespace: str | None = Field(default=None, min_length=1, max_length=63, pattern=NAME_PATTERN)
    cluster: str | None = Field(default=None, min_length=1, max_length=63, pattern=NAME_PATTERN)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    resourceVersion: str | None = None


class Condition(BaseModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    lastTransitionTime: str = ""


def condition(type_: str, ok: bool | None, reason: str = "", message: str = "", when: str = "") -> dict:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": when}
