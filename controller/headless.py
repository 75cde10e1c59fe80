"""The headless controller (`meshtui controller`): the embedded controller over a state dir, its API,
and (once plugged in) the embedded federation's data plane, with no UI.

Life: take the store lock -> open the store -> start the data plane -> serve the API -> record
itself in <state>/controller.json. On SIGTERM/SIGINT: drop the record, stop accepting, let in-flight
requests finish (open streams end), close the controller, release the lock.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import signal
import ssl
import sys
import time
from pathlib import Path

from controller.api import ApiServer, build_app, parse_listen
from controller.api.server import DRAIN_SECONDS
from controller.auth import load_or_create_tokens
from controller.embedded import EmbeddedController
from controller.errors import Unavailable
from controller.leader import LeaderOptions
from controller.statefile import LOCK_WAIT_SECONDS, ControllerRecord, StoreLock, read_record, remove_record, write_record

log = logging.getLogger("meshtui.controller")


async def start_dataplane(controller: EmbeddedController) -> None:
    """Start the embedded federation's data plane (proxies, workloads, probes, metrics, tap) over
    `controller`; `controller.close()` stops it."""
    from controller.federation import EmbeddedFederation

    federation = EmbeddedFederation(controller, controller.state_dir)
    controller.attach_dataplane(federation)
    await federation.start()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors (no library in the project does this)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)  # structured extras: log.info(..., extra={"fields": {...}})
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(fmt: str = "plain", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def server_tls(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def serve(state_dir: Path, stop: asyncio.Event, *, api: str = "127.0.0.1:0", tls: ssl.SSLContext | None = None,
                drain_seconds: float = DRAIN_SECONDS, leader: LeaderOptions | None = None) -> str:
    """Run until `stop` is set; returns the URL it served."""
    host, port = parse_listen(api)
    running = read_record(state_dir)
    if running is not None:
        raise Unavailable(f"a controller already serves {state_dir} at {running.url} (pid {running.pid})")
    lock = StoreLock(state_dir)
    await asyncio.to_thread(lock.acquire, LOCK_WAIT_SECONDS)
    try:
        controller = await EmbeddedController.open(state_dir)
        try:
            tokens = load_or_create_tokens(state_dir)
            server = ApiServer(build_app(controller, tokens), ssl=tls, drain_seconds=drain_seconds)
            url = await server.start(host, port)
            write_record(state_dir, ControllerRecord(url, os.getpid(), tls is not None))
            log.info("serving the API at %s (state %s, pid %d)", url, state_dir, os.getpid())
            if tls is None and not _loopback(host):
                log.warning("the API listens on %s without TLS: bearer tokens cross the network in clear text", host)
            # the data plane starts behind the API: a proxy that cannot start never hides the control plane
            planes = asyncio.create_task(_start_planes(controller, leader))
            try:
                await stop.wait()
                log.info("stopping: no new connections; draining in-flight requests (up to %gs)", drain_seconds)
            finally:
                planes.cancel()
                await asyncio.gather(planes, return_exceptions=True)
                remove_record(state_dir, os.getpid())
                await server.stop()
        finally:
            await controller.close()
    finally:
        lock.release()
    log.info("stopped")
    return url


async def _start_planes(controller: EmbeddedController, leader: LeaderOptions | None) -> None:
    try:
        await start_dataplane(controller)
        await controller.kube.start(leader=leader)  # follow Kubernetes-backed clusters, if any
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the data plane did not start; the API keeps serving")


async def serve_until_signalled(state_dir: Path, *, api: str = "127.0.0.1:0", tls: ssl.SSLContext | None = None,
                                leader: LeaderOptions | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(state_dir, stop, api=api, tls=tls, leader=leader)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
