"""The bundled echo app, in process and as `python -m proxy.samples.echo`."""
from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from proxy.samples.echo import serve_echo
from tests.proxy.http_support import free_port

ROOT = Path(__file__).resolve().parents[2]


async def test_message_on_get_and_body_on_post():
    server = await serve_echo("127.0.0.1", 0, message="Hi, I am from cluster-1 and controlled by mesh!")
    base = f"http://127.0.0.1:{server.address[1]}"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(base + "/anything") as r:
                assert (r.status, r.headers["Content-Type"]) == (200, "text/plain; charset=utf-8")
                assert await r.text() == "Hi, I am from cluster-1 and controlled by mesh!\n"
            async with s.post(base, data=b"payload", headers={"Content-Type": "application/json"}) as r:
                assert (r.status, r.headers["Content-Type"], await r.read()) == (200, "application/json", b"payload")
    finally:
        await server.shutdown(0.5)


async def test_error_rate_and_latency():
    server = await serve_echo("127.0.0.1", 0, message="x", error_rate=1.0, latency_ms=150)
    try:
        async with aiohttp.ClientSession() as s:
            t0 = time.monotonic()
            async with s.get(f"http://127.0.0.1:{server.address[1]}/") as r:
                assert (r.status, await r.text()) == (500, "injected error\n")
            assert time.monotonic() - t0 >= 0.15
    finally:
        await server.shutdown(0.5)


async def test_partial_error_rate_fails_some_requests():
    server = await serve_echo("127.0.0.1", 0, message="x", error_rate=0.5)
    try:
        async with aiohttp.ClientSession() as s:
            statuses = []
            for _ in range(200):
                async with s.get(f"http://127.0.0.1:{server.address[1]}/") as r:
                    statuses.append(r.status)
        assert set(statuses) == {200, 500}
        assert 40 < statuses.count(500) < 160
    finally:
        await server.shutdown(0.5)


async def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="error-rate must be within"):
        await serve_echo("127.0.0.1", 0, message="x", error_rate=2)


async def test_runs_as_a_program():
    listen = f"127.0.0.1:{free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.samples.echo", "--listen", listen, "--cluster", "cluster-3",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 15) == b"ready\n"
        async with aiohttp.ClientSession() as s, s.get(f"http://{listen}/") as r:
            assert await r.text() == "Hi, I am from cluster-3!\n"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_program_reports_bad_arguments():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.samples.echo", "--listen", "127.0.0.1:0", "--error-rate", "7",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2 and "error-rate must be within [0, 1], got 7.0" in err.decode()
