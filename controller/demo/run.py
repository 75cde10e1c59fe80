"""`meshtui demo`: a whole federation on this machine from a scenario.

The controller over the demo's state dir (under its store lock), the scenario's resources
(applied once, when the state dir has no cluster yet: re-running reuses the federation and
adopts its running proxies), the embedded federation's processes, the API (recorded in the
state dir so CLI commands in another terminal reach this controller) and the scenario's
generated traffic; then the TUI, or nothing until `stop` is set (headless)."""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import aiohttp

from controller.api import ApiServer, build_app, parse_listen
from controller.auth import load_or_create_tokens
from controller.embedded import EmbeddedController
from controller.federation import EmbeddedFederation
from controller.headless import LOCK_WAIT_SECONDS
from controller.reconcile.state import LOOPBACK_ANNOTATION
from controller.statefile import ControllerRecord, StoreLock, remove_record, write_record

from .client import outbound_address
from .scenarios import Scenario
from .traffic import GeneratedTraffic

log = logging.getLogger("meshtui.demo")


@dataclass(frozen=True)
class DemoInfo:
    state_dir: Path
    api_url: str
    scenario: Scenario
    applied: bool  # False when the state dir already held a federation
    clusters: dict[str, dict]  # name -> runtime status


async def run_demo(state_dir: Path, scenario: Scenario, *, stop: asyncio.Event, api: str = "127.0.0.1:0",
                   loopback_base: str | None = None,
                   ui: Callable[[EmbeddedController], Awaitable[None]] | None = None,
                   on_ready: Callable[[DemoInfo], None] | None = None) -> None:
    host, port = parse_listen(api)
    state_dir = Path(state_dir).resolve()
    lock = StoreLock(state_dir)
    await asyncio.to_thread(lock.acquire, LOCK_WAIT_SECONDS)
    try:
        fresh = not (state_dir / "federation.json").exists()
        controller = await EmbeddedController.open(state_dir, loopback_base=loopback_base if fresh else None)
        async with aiohttp.ClientSession() as session:
            try:
                applied = not controller.core.state.clusters
                if applied:
                    await controller.apply(scenario.documents, user="demo", source=scenario.source)
                federation = EmbeddedFederation(controller, state_dir)
                controller.attach_dataplane(federation)
                await federation.start()
                server = ApiServer(build_app(controller, load_or_create_tokens(state_dir)))
                url = await server.start(host, port)
                write_record(state_dir, ControllerRecord(url, os.getpid(), False))
                traffic = GeneratedTraffic(session, scenario.traffic, lambda c: _outbound(controller, c))
                traffic.start()
                try:
                    if on_ready is not None:
                        clusters = {o["metadata"]["name"]: o.get("status", {}) for o in await controller.list("Cluster")}
                        on_ready(DemoInfo(state_dir, url, scenario, applied, clusters))
                    if ui is not None:
                        ui_task = asyncio.create_task(ui(controller))
                        stop_task = asyncio.create_task(stop.wait())
                        await asyncio.wait({ui_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                        stop_task.cancel()
                        if not ui_task.done():
                            ui_task.cancel()
                        await asyncio.gather(ui_task, return_exceptions=True)
                    else:
                        await stop.wait()
                finally:
                    await traffic.stop()
                    remove_record(state_dir, os.getpid())
                    await server.stop()
            finally:
                await controller.close()
    finally:
        lock.release()


def _outbound(controller: EmbeddedController, cluster: str) -> str | None:
    obj = controller.core.state.clusters.get(cluster)
    if obj is None or LOOPBACK_ANNOTATION not in obj["metadata"].get("annotations", {}):
        return None
    return outbound_address(obj)
