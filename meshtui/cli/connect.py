"""Which controller a CLI command talks to.

In order: `--controller URL` (or $MESHTUI_CONTROLLER); else the controller recorded in the state
dir (<state>/controller.json); else an in-process controller over the state dir, opened under the
store lock so it never shares the store with another writer. Tokens: `--token`, $MESHTUI_TOKEN, or
the state dir's tokens.json (the admin token)."""
from __future__ import annotations

import argparse
import asyncio
import os
import ssl
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from controller.auth import read_tokens
from controller.embedded import EmbeddedController
from controller.errors import Unauthorized, Unavailable
from controller.interface import Controller
from controller.remote import RemoteController
from controller.statefile import LOCK_WAIT_SECONDS, ControllerRecord, StoreLock, read_record, resolve_state_dir


def state_dir_of(args: argparse.Namespace) -> Path:
    return resolve_state_dir(getattr(args, "state", None))


def client_tls(cafile: str | None) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=cafile) if cafile else None


def _token(args: argparse.Namespace, state_dir: Path, url: str) -> str:
    token = getattr(args, "token", None) or os.environ.get("MESHTUI_TOKEN")
    if not token:
        tokens = read_tokens(state_dir)
        token = tokens.admin if tokens else None
    if not token:
        raise Unauthorized(f"no token for the controller at {url}: pass --token, set MESHTUI_TOKEN, or --state of that controller")
    return token


async def _record_or_lock(state_dir: Path) -> ControllerRecord | StoreLock:
    """The running controller's record, or the store lock for an in-process controller. Polls for a
    while, since a controller may be starting (holds the lock, not yet recorded) or stopping."""
    lock = StoreLock(state_dir)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOCK_WAIT_SECONDS
    while True:
        record = read_record(state_dir)
        if record is not None:
            return record
        try:
            lock.acquire()
            return lock
        except Unavailable as e:
            if loop.time() >= deadline:
                raise Unavailable(f"{e.message}, which serves no API; stop it, or run `meshtui controller` to share the store") from None
        await asyncio.sleep(0.05)


@asynccontextmanager
async def open_controller(args: argparse.Namespace) -> AsyncIterator[Controller]:
    state_dir = state_dir_of(args)
    url = getattr(args, "controller", None) or os.environ.get("MESHTUI_CONTROLLER")
    found = None if url else await _record_or_lock(state_dir)
    if not isinstance(found, StoreLock):
        target = url or found.url  # type: ignore[union-attr]
        remote = await RemoteController.connect(target, _token(args, state_dir, target), ssl=client_tls(getattr(args, "cacert", None)))
        try:
            yield remote
        finally:
            await remote.close()
        return
    try:
        controller = await EmbeddedController.open(state_dir)
        try:
            yield controller
        finally:
            await controller.close()
    finally:
        found.release()
