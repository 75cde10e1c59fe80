"""Helpers for the mTLS, link and check tests of the embedded federation: a federation with
runtime options, its controller's API recorded in the state dir (so the CLI in a subprocess
reaches it as it would a `meshtui demo` in another terminal), TLS clients holding the
federation's leaves, and small waits."""
from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import aiohttp

from controller.api import ApiServer, build_app
from controller.auth import load_or_create_tokens
from controller.embedded import EmbeddedController
from controller.statefile import ControllerRecord, remove_record, write_record
from proxy.tls import Identity, LeafFiles, client_context
from tests.running import address

ROOT = Path(__file__).resolve().parents[2]
URL = "http://httpbin.httpbin:8080/"
HI = "Hi, I am from {} and controlled by mesh!"


@asynccontextmanager
async def api_recorded(controller: EmbeddedController) -> AsyncIterator[str]:
    """Serve the controller's API and record it in its state dir, as `meshtui demo` does."""
    state = controller.state_dir
    server = ApiServer(build_app(controller, load_or_create_tokens(state)))
    url = await server.start("127.0.0.1", 0)
    write_record(state, ControllerRecord(url, os.getpid(), False))
    try:
        yield url
    finally:
        remove_record(state, os.getpid())
        await server.stop()


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def meshtui(state: Path, *args: str, timeout: float = 60.0) -> Ran:
    """The CLI in a subprocess (its own event loop and imports, as a user runs it)."""
    cmd = [sys.executable, "-c", "import sys; from meshtui.cli.main import main; sys.exit(main())", "--state", str(state), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHTUI_")}
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    return Ran(done.returncode, done.stdout, done.stderr)


def leaf_of(state: Path, cluster: str, namespace: str = "default", account: str = "default") -> LeafFiles:
    return LeafFiles.from_dir(state / "identity" / "leaves" / cluster / namespace / account)


def gateway_name(trust_domain: str, cluster: str) -> str:
    """The DNS SAN a cluster's gateway presents."""
    return Identity(trust_domain, cluster, "meshtui-system", "gateway").dns_name


async def gateway_get(controller: EmbeddedController, cluster: str, path: str, ctx: ssl.SSLContext) -> tuple[int, str]:
    """GET straight to a cluster's gateway over TLS with `ctx`, as another cluster's proxy would."""
    host, port = address(controller, cluster, "gateway").rsplit(":", 1)
    server_hostname = gateway_name(controller.core.trust_domain, cluster)
    connector = aiohttp.TCPConnector(ssl=ctx, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        # aiohttp verifies against the URL's host: resolve the gateway's DNS SAN to its address
        async with session.get(f"https://{host}:{port}{path}", server_hostname=server_hostname,
                               timeout=aiohttp.ClientTimeout(total=5)) as r:
            return r.status, (await r.text()).strip()


def _exchange(host: str, port: int, ctx: ssl.SSLContext, server_hostname: str) -> str:
    with socket.create_connection((host, port), timeout=5) as raw:
        try:
            tls = ctx.wrap_socket(raw, server_hostname=server_hostname)
        except (ssl.SSLError, ConnectionError) as e:
            return f"handshake failed: {e}"
        with tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                return "answered" if tls.recv(100) else "closed without an answer"
            except (ssl.SSLError, ConnectionError) as e:
                return f"closed: {e}"


async def gateway_handshake(controller: EmbeddedController, cluster: str, ctx: ssl.SSLContext) -> str:
    """Connect straight to a cluster's gateway with TLS 1.2 (where the server checks the client's
    certificate inside the handshake; TLS 1.3 finishes the client's side first) and send a request:
    'answered', or how the connection ended ('handshake failed: ...')."""
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    host, port = address(controller, cluster, "gateway").rsplit(":", 1)
    return await asyncio.to_thread(_exchange, host, int(port), ctx, gateway_name(controller.core.trust_domain, cluster))


def client_ctx(leaf: LeafFiles | None, bundle: Path) -> ssl.SSLContext:
    """A client context presenting `leaf` (None: no certificate) and trusting `bundle`."""
    if leaf is not None:
        return client_context(leaf)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(bundle)
    return ctx
