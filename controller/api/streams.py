"""The NDJSON streams: resource watch and tap. One line per event, a heartbeat line whenever the
stream has been quiet for the heartbeat interval, an error line if the source fails after the
stream started, and a clean end when the server drains."""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Callable

from aiohttp import web

from controller.errors import MeshError
from controller.interface import WatchEvent
from controller.model import resolve_kind
from proxy.events import TapDropped, TapEvent, TapFilter

from .handlers import int_param
from .keys import CONTROLLER, HEARTBEAT, STOPPING
from .status import BadRequest
from .wire import HEARTBEAT_BOOKMARK, NDJSON, TAP_ERROR_KIND, TAP_HEARTBEAT_KIND, WATCH_ERROR

log = logging.getLogger("meshtui.api")


async def stream_ndjson(
    request: web.Request,
    source: AsyncIterator[Any],
    encode: Callable[[Any], dict],
    heartbeat: Callable[[], dict],
    error: Callable[[MeshError], dict],
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-cache"})
    stopping = asyncio.ensure_future(request.app[STOPPING].wait())
    pending = asyncio.ensure_future(anext(source))
    try:
        await response.prepare(request)
        while True:
            done, _ = await asyncio.wait({pending, stopping}, timeout=request.app[HEARTBEAT],
                                         return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:
                break
            if pending not in done:
                line = heartbeat()
            else:
                try:
                    line = encode(pending.result())
                except StopAsyncIteration:
                    break
                except MeshError as e:
                    await response.write(_line(error(e)))
                    break
                except Exception as e:
                    log.exception("%s stream failed", request.path)
                    await response.write(_line(error(MeshError(f"internal error: {type(e).__name__}: {e}"))))
                    break
                pending = asyncio.ensure_future(anext(source))
            await response.write(_line(line))
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away; nothing to tell it
    finally:
        for task in (pending, stopping):
            task.cancel()
        await asyncio.gather(pending, stopping, return_exceptions=True)
        await source.aclose()
    return response


def _line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


async def watch(request: web.Request) -> web.StreamResponse:
    kinds = [resolve_kind(k).name for k in request.query.get("kinds", "").split(",") if k.strip()] or None
    since = int_param(request, "since", None)
    source = request.app[CONTROLLER].watch(kinds, cluster=request.query.get("cluster") or None, since=since)
    last_rv = {"value": str(since) if since is not None else ""}

    def encode(event: WatchEvent) -> dict:
        rv = event.object.get("metadata", {}).get("resourceVersion")
        if rv:
            last_rv["value"] = rv
        return event.to_dict()

    def heartbeat() -> dict:
        return WatchEvent("BOOKMARK", {"kind": "Bookmark", "metadata": {"name": HEARTBEAT_BOOKMARK, "resourceVersion": last_rv["value"]}}).to_dict()

    return await stream_ndjson(request, source, encode, heartbeat, lambda e: {"type": WATCH_ERROR, "object": e.to_dict()})


async def tap(request: web.Request) -> web.StreamResponse:
    try:
        flt = TapFilter.from_query(dict(request.query))
    except ValueError as e:
        raise BadRequest(f"bad tap filter: {e}") from None
    source = request.app[CONTROLLER].tap(flt)

    def encode(event: TapEvent | TapDropped) -> dict:
        return event.to_dict()

    return await stream_ndjson(request, source, encode, lambda: {"kind": TAP_HEARTBEAT_KIND},
                               lambda e: {"kind": TAP_ERROR_KIND, "status": e.to_dict()})
