"""`meshtui serve-ssh` as a user runs it: over a state dir's store, or attached to a running
`meshtui controller` (writes then reach the audit log through the API's user header)."""
from __future__ import annotations

import asyncio
import json
import signal
import stat
from pathlib import Path

import asyncssh

from tests.cli.conftest import MESHTUI, ROOT, HeadlessController, cli_env, meshtui

from .conftest import SCENARIO, Keys
from .terminal import open_terminal


class ServeSsh:
    """The command as a subprocess; its port is read from its JSON log."""

    def __init__(self, state: Path, keys: Keys) -> None:
        self.state, self.keys = state, keys
        self.proc: asyncio.subprocess.Process | None = None
        self.logs: list[dict] = []

    async def start(self, *extra: str) -> int:
        self.proc = await asyncio.create_subprocess_exec(
            MESHTUI, "serve-ssh", "--state", str(self.state), "--listen", "127.0.0.1:0", "--log-format", "json",
            "--authorized-keys", str(self.keys.authorized), "--viewer-keys", str(self.keys.viewers), *extra,
            cwd=ROOT, env=cli_env(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        while True:
            line = await asyncio.wait_for(self.proc.stderr.readline(), 20)
            assert line, f"serve-ssh exited: {self.logs}"
            self.logs.append(json.loads(line))
            msg = self.logs[-1]["msg"]
            if msg.startswith("ssh server listening"):
                return int(msg.split("addr=127.0.0.1:")[1].split()[0])

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.proc.communicate(), 20)
        self.logs += [json.loads(line) for line in err.decode().splitlines()]
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


async def connect(port: int, key: asyncssh.SSHKey, user: str) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect("127.0.0.1", port, username=user, client_keys=[key], known_hosts=None, agent_path=None)


async def test_serve_ssh_over_the_state_dir_stops_on_sigterm_and_keeps_its_host_key(tmp_path, keys):
    state = tmp_path / "state"
    assert meshtui(state, "apply", "--cluster", "cluster-1", "-f", "-", stdin=SCENARIO).code == 0
    r = meshtui(state, "serve-ssh", "--authorized-keys", str(tmp_path / "none"), "--viewer-keys", str(tmp_path / "none2"))
    assert r.code == 1 and r.err.startswith(f"error: no keys to admit: create {tmp_path / 'none'}"), r.err

    server = ServeSsh(state, keys)
    try:
        port = await server.start()
        host_key = state / "ssh" / "host_ed25519_key"
        assert stat.S_IMODE(host_key.stat().st_mode) == 0o600
        conn = await connect(port, keys.viewer, "victor")
        fingerprint = conn.get_server_host_key().get_fingerprint("sha256")
        term = await open_terminal(conn, (100, 30))
        await term.type("2")
        await term.wait_text("ratings")
        assert await server.stop() == 0
        assert await term.ended() == 0
        assert "meshtui: the server is stopping" in term.raw.decode(errors="replace")
        conn.close()
        messages = [line["msg"] for line in server.logs]
        assert any(m.startswith("ssh session ended user=victor role=viewer") and 'reason="the server is stopping"' in m for m in messages)
        assert messages[-1] == "stopped"

        port = await server.start()  # the same host key after a restart
        async with await connect(port, keys.admin, "alice") as conn:
            assert conn.get_server_host_key().get_fingerprint("sha256") == fingerprint
        assert await server.stop() == 0
    finally:
        server.kill()


async def test_serve_ssh_attached_to_a_controller_audits_the_ssh_user(tmp_path, keys):
    state = tmp_path / "state"
    headless = HeadlessController(state)
    server = ServeSsh(state, keys)
    try:
        proc = headless.start()
        await asyncio.to_thread(headless.wait_recorded, proc)
        assert meshtui(state, "apply", "--cluster", "cluster-1", "-f", "-", stdin=SCENARIO).code == 0
        port = await server.start()  # finds the controller through the state dir
        async with await connect(port, keys.admin, "alice") as conn:
            term = await open_terminal(conn, (110, 30))
            await term.type("3")
            await term.wait_text("ratings")
            await term.type("x")
            for _ in range(100):
                audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
                if any(e["kind"] == "ServiceExport" for e in audit):
                    break
                await asyncio.sleep(0.1)
        assert [(e["user"], e["action"], e["name"]) for e in audit if e["kind"] == "ServiceExport"] == [("alice", "apply", "ratings")]
        assert {e["user"] for e in audit if e["kind"] != "ServiceExport"} == {"admin"}  # the CLI's applies
        assert await server.stop() == 0
        code, _ = await asyncio.to_thread(headless.stop, proc)
        assert code == 0
    finally:
        server.kill()
        for p in headless.procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
