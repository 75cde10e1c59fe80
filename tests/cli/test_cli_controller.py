"""`meshtui controller` as a subprocess: CLI commands find it through the state dir, SIGTERM drains
in-flight requests and stops it cleanly, and a restart serves the same state."""
from __future__ import annotations

import asyncio
import json
import signal
import time
from urllib.parse import urlsplit

from controller.auth import read_tokens
from controller.statefile import read_record

from .conftest import FIXTURES, meshtui


LATE_SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "late", "namespace": "load"},
                "spec": {"ports": [{"port": 80}]}}


async def _until_refused(host: str, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, w = await asyncio.open_connection(host, port)
        except ConnectionRefusedError:
            return
        w.close()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{host}:{port} still accepts connections")


async def test_cli_reaches_the_running_controller_which_stops_cleanly_and_restarts(headless):
    state = headless.state
    proc = headless.start("--api", "127.0.0.1:0", "--log-format", "json")
    record = headless.wait_recorded(proc)
    assert record.url.startswith("http://127.0.0.1:") and not record.url.endswith(":0") and record.tls is False
    assert (state / "controller.json").stat().st_mode & 0o777 == 0o600

    r = meshtui(state, "apply", "-f", str(FIXTURES / "fsm_clusters.yaml"))
    assert (r.code, r.out.count("configured")) == (0, 3), r.err
    # the write went through the API (the audit names the API role), not an in-process controller
    users = {json.loads(line)["user"] for line in (state / "audit.jsonl").read_text().splitlines()}
    assert users == {"admin"}

    # --controller and --token name another controller and role than the state dir's
    elsewhere = state.parent / "elsewhere"
    r = meshtui(elsewhere, "--controller", record.url, "--token", read_tokens(state).viewer, "delete", "cluster", "cluster-1")
    assert (r.code, r.err) == (1, "error: viewer tokens cannot write\n")

    # a second controller over the same store is refused while the first runs
    second = meshtui(state, "controller")
    assert (second.code, second.err) == (1, f"error: a controller already serves {state} at {record.url} (pid {proc.pid})\n")

    # SIGTERM while a request is in flight (its body still arriving): the server stops accepting
    # connections, finishes that request, and exits 0
    host, port = urlsplit(record.url).hostname, urlsplit(record.url).port
    reader, writer = await asyncio.open_connection(host, port)
    body = json.dumps({"manifests": [LATE_SERVICE], "cluster": "cluster-1"}).encode()
    writer.write(f"POST /api/v1/apply HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {read_tokens(state).admin}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:20])
    await writer.drain()
    await asyncio.sleep(0.5)  # the server dispatches the request and waits for its body
    proc.send_signal(signal.SIGTERM)
    await _until_refused(host, port)
    writer.write(body[20:])
    response = await asyncio.wait_for(reader.read(), 15)
    writer.close()
    assert response.startswith(b"HTTP/1.1 200 OK"), response[:300]
    assert b'"name":"late"' in response.replace(b" ", b"")
    _, err = await asyncio.to_thread(proc.communicate, timeout=15)
    assert proc.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines()]
    assert any(line["msg"].startswith("stopping: no new connections") for line in logs)
    assert logs[-1]["msg"] == "stopped"
    assert not (state / "controller.json").exists() and read_record(state) is None

    proc = headless.start()
    headless.wait_recorded(proc)
    r = meshtui(state, "get", "svc", "late", "-n", "load", "--cluster", "cluster-1", "-o", "json")
    assert (r.code, json.loads(r.out)["metadata"]["name"]) == (0, "late"), r.err
    r = meshtui(state, "get", "clusters")
    assert [line.split()[0] for line in r.out.splitlines()] == ["NAME", "cluster-1", "cluster-2", "cluster-3"]
    code, _ = headless.stop(proc)
    assert code == 0


def test_a_stale_record_is_ignored(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "controller.json").write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 2**22 + 12345, "tls": False}))
    assert read_record(state) is None
    started = time.monotonic()
    r = meshtui(state, "apply", "-f", str(FIXTURES / "fsm_clusters.yaml"))
    assert r.code == 0, r.err
    assert time.monotonic() - started < 10
