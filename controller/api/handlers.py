"""Request handlers of the unary routes: resources, apply, golden metrics, checks, audit, identity."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from controller.auth import VIEWER
from controller.model import resolve_kind

from .keys import CONTROLLER, METRICS, ROLE, STOPPING, USER
from .metrics import CONTENT_TYPE
from .status import BadRequest

WINDOWS = ("10s", "1m")


def _opt(request: web.Request, name: str) -> str | None:
    return request.query.get(name) or None


def int_param(request: web.Request, name: str, default: int | None, *, minimum: int = 0) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise BadRequest(f"query parameter {name} must be at least {minimum}, got {value}")
    return value


def items(objs: list[Any]) -> web.Response:
    return web.json_response({"apiVersion": "v1", "kind": "List", "items": objs})


# health ------------------------------------------------------------------------------------
async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    if request.app[STOPPING].is_set():
        return web.Response(status=503, text="shutting down\n")
    return web.Response(text="ok\n")


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS].render(request.app[CONTROLLER])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


# resources ---------------------------------------------------------------------------------
async def list_resources(request: web.Request) -> web.Response:
    kind = resolve_kind(request.match_info["kind"]).name
    objs = await request.app[CONTROLLER].list(kind, cluster=_opt(request, "cluster"), namespace=_opt(request, "namespace"))
    return items(objs)


async def get_resource(request: web.Request) -> web.Response:
    kind = resolve_kind(request.match_info["kind"]).name
    obj = await request.app[CONTROLLER].get(kind, request.match_info["name"], cluster=_opt(request, "cluster"),
                                            namespace=_opt(request, "namespace"))
    return web.json_response(obj)


async def delete_resource(request: web.Request) -> web.Response:
    kind = resolve_kind(request.match_info["kind"]).name
    obj = await request.app[CONTROLLER].delete(kind, request.match_info["name"], cluster=_opt(request, "cluster"),
                                               namespace=_opt(request, "namespace"), user=request[USER])
    return web.json_response(obj)


def parse_apply_body(raw: bytes) -> dict[str, Any]:
    """The apply request's fields, checked; raises BadRequest naming what is wrong."""
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object with a manifests field, got {type(body).__name__}")
    manifests = body.get("manifests")
    if not (isinstance(manifests, str) or (isinstance(manifests, list) and all(isinstance(m, dict) for m in manifests))):
        raise BadRequest("field manifests must be a string of YAML/JSON documents or a list of objects")
    for name in ("cluster", "namespace", "source"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise BadRequest(f"field {name} must be a string")
    return body


async def apply(request: web.Request) -> web.Response:
    body = parse_apply_body(await request.read())
    objs = await request.app[CONTROLLER].apply(
        body["manifests"], cluster=body.get("cluster") or None, namespace=body.get("namespace") or None,
        user=request[USER], source=body.get("source") or "request",
    )
    return items(objs)


# operations --------------------------------------------------------------------------------
async def golden(request: web.Request) -> web.Response:
    window = request.query.get("window", "10s")
    if window not in WINDOWS:
        raise BadRequest(f"query parameter window must be one of {', '.join(WINDOWS)}, got {window!r}")
    return items([row.to_dict() for row in await request.app[CONTROLLER].golden(window)])


async def checks(request: web.Request) -> web.Response:
    return items([c.to_dict() for c in await request.app[CONTROLLER].checks()])


async def audit(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 200, minimum=1)
    return items([e.to_dict() for e in await request.app[CONTROLLER].audit(limit)])


async def whoami(request: web.Request) -> web.Response:
    role = request[ROLE]
    return web.json_response({
        "role": role,
        "user": request[USER],
        "readOnly": role == VIEWER or request.app[CONTROLLER].read_only,
    })
