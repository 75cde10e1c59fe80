"""`python -m proxy` as a real process: ready line, config saved and served
again after a restart (static stability), graceful stop on SIGTERM."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from proxy.http1.server import Request, Response
from proxy.main import admin_token
from tests.proxy.http_support import config, endpoint, free_port, route, text_handler, upstreams

ROOT = Path(__file__).resolve().parents[2]
HOST = {"Host": "httpbin.httpbin:8080"}
AUTH = {"Authorization": "Bearer tok"}


class ProxyProcess:
    def __init__(self, config_file: Path) -> None:
        self.outbound = f"127.0.0.1:{free_port()}"
        self.admin = f"127.0.0.1:{free_port()}"
        self.config_file = config_file
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "--cluster", "c1", "--outbound", self.outbound, "--admin", self.admin,
            "--config-file", str(self.config_file),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "MESHTUI_ADMIN_TOKEN": "tok"},  # not on the command line
        )
        line = await asyncio.wait_for(self.proc.stdout.readline(), 15)
        assert line == b"ready\n", (line, await self.proc.stderr.read())

    async def stop(self) -> tuple[int, str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.proc.communicate(), 15)
        return self.proc.returncode, err.decode()

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


@pytest.fixture
async def processes():
    started: list[ProxyProcess] = []

    async def start(config_file: Path) -> ProxyProcess:
        p = ProxyProcess(config_file)
        started.append(p)
        await p.start()
        return p

    yield start
    for p in started:
        p.kill()
        if p.proc is not None:
            await p.proc.wait()


async def test_restarted_proxy_serves_its_last_config(tmp_path, processes):
    saved = tmp_path / "c1.json"
    async with upstreams(text_handler("kept")) as (up,), aiohttp.ClientSession() as s:
        first = await processes(saved)
        cfg = config("c1", [route("httpbin", "httpbin", 8080, [[("c1", [endpoint(up.port, "c1")])]])], version=5)
        async with s.put(f"http://{first.admin}/config", json=cfg, headers=AUTH) as r:
            assert r.status == 200
        code, _ = await first.stop()
        assert code == 0

        second = await processes(saved)  # no controller: only the saved file
        async with s.get(f"http://{second.admin}/config") as r:
            assert (await r.json())["version"] == 5
        async with s.get(f"http://{second.outbound}/", headers=HOST) as r:
            assert (r.status, await r.text()) == (200, "kept\n")
        code, err = await second.stop()
        assert code == 0 and "serving saved config version 5" in err


async def test_sigterm_lets_in_flight_requests_finish(tmp_path, processes):
    started = asyncio.Event()

    async def slow(req: Request, resp: Response) -> None:
        started.set()
        await asyncio.sleep(0.5)
        resp.send(200, [], b"done")

    saved = tmp_path / "c1.json"
    async with upstreams(slow) as (up,):
        saved.write_text(json.dumps(config("c1", [route("httpbin", "httpbin", 8080,
                                                          [[("c1", [endpoint(up.port, "c1")])]])])))
        proc = await processes(saved)
        async with aiohttp.ClientSession() as s:
            request = asyncio.create_task(s.get(f"http://{proc.outbound}/", headers=HOST))
            await asyncio.wait_for(started.wait(), 5)
            stopping = asyncio.create_task(proc.stop())
            r = await request
            assert (r.status, await r.read()) == (200, b"done")
            code, err = await stopping
            assert code == 0 and "draining in-flight requests" in err


async def test_unreadable_saved_config_is_reported_and_the_proxy_starts(tmp_path, processes):
    saved = tmp_path / "c1.json"
    saved.write_text("{broken")
    proc = await processes(saved)
    async with aiohttp.ClientSession() as s, s.get(f"http://{proc.admin}/config") as r:
        assert (await r.json())["version"] == 0
    code, err = await proc.stop()
    assert code == 0 and f"{saved}: cannot read the saved config" in err


async def test_bad_listen_address_is_a_usage_error():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "--cluster", "c1", "--outbound", "nowhere", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2 and "--outbound: expected HOST:PORT, got 'nowhere'" in err.decode()


def test_admin_token_sources(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    env = {"MESHTUI_ADMIN_TOKEN": "from-env"}
    assert admin_token("from-flag", str(token_file), env) == "from-flag"
    assert admin_token("", str(token_file), env) == "from-file"
    assert admin_token("", "", env) == "from-env"
    assert admin_token("", "", {}) == ""
