"""The controller's HTTP API (DESIGN section 7) over any `Controller`.

Middlewares, outermost first: `observe` counts every request by route and code, keeps the count of
requests in flight for a graceful stop, and turns every failure into a Status body (MeshError ->
its status; anything else -> 500 with the traceback logged, and the server goes on);
`authenticate` checks the bearer token and the role.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiohttp import web

from controller.auth import VIEWER, Tokens
from controller.errors import Forbidden, MeshError, Unauthorized
from controller.interface import Controller

from . import handlers, streams
from .drain import InFlight
from .keys import CONTROLLER, HEARTBEAT, IN_FLIGHT, METRICS, ROLE, STOPPING, TOKENS, USER
from .metrics import ApiMetrics
from .status import from_http_exception, status_response
from .wire import HEARTBEAT_SECONDS, PREFIX, USER_HEADER

log = logging.getLogger("meshtui.api")

MAX_BODY = 8 * 1024 * 1024
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    in_flight = request.app[IN_FLIGHT]
    in_flight.begin()
    try:
        response = await _answer(request, handler)
        if request.app[STOPPING].is_set() and not response.prepared:
            response.force_close()  # draining: the client should not reuse this connection
        request.app[METRICS].observe(route, request.method, response.status)
        return response
    finally:
        in_flight.end()


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MeshError as e:
        return status_response(e, {"WWW-Authenticate": "Bearer"} if isinstance(e, Unauthorized) else None)
    except web.HTTPException as e:
        return status_response(from_http_exception(e))
    except Exception as e:  # a bug must not take the API down: log it, answer 500, keep serving
        log.exception("%s %s failed", request.method, request.path)
        return status_response(MeshError(f"internal error: {type(e).__name__}: {e}"))


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    role = request.app[TOKENS].role_of(token.strip())
    if role is None:
        raise Unauthorized("unknown token")
    if role == VIEWER and request.method not in READ_METHODS:
        raise Forbidden("viewer tokens cannot write")
    request[ROLE] = role
    request[USER] = request.headers.get(USER_HEADER) or role
    return await handler(request)


def build_app(controller: Controller, tokens: Tokens, *, max_body: int = MAX_BODY,
              heartbeat: float = HEARTBEAT_SECONDS) -> web.Application:
    app = web.Application(middlewares=[observe, authenticate], client_max_size=max_body)
    app[CONTROLLER] = controller
    app[TOKENS] = tokens
    app[METRICS] = ApiMetrics()
    app[HEARTBEAT] = heartbeat
    app[STOPPING] = asyncio.Event()
    app[IN_FLIGHT] = InFlight()

    async def on_shutdown(app: web.Application) -> None:
        app[STOPPING].set()  # open streams end so the drain can finish

    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_get(f"{PREFIX}/resources/{{kind}}", handlers.list_resources)
    app.router.add_get(f"{PREFIX}/resources/{{kind}}/{{name}}", handlers.get_resource)
    app.router.add_delete(f"{PREFIX}/resources/{{kind}}/{{name}}", handlers.delete_resource)
    app.router.add_post(f"{PREFIX}/apply", handlers.apply)
    app.router.add_get(f"{PREFIX}/watch", streams.watch)
    app.router.add_get(f"{PREFIX}/tap", streams.tap)
    app.router.add_get(f"{PREFIX}/golden", handlers.golden)
    app.router.add_get(f"{PREFIX}/checks", handlers.checks)
    app.router.add_get(f"{PREFIX}/audit", handlers.audit)
    app.router.add_get(f"{PREFIX}/whoami", handlers.whoami)
    return app
