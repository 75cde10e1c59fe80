"""SSH sessions: memory per extra session and update latency as sessions are added, for the design
`meshtui serve-ssh` uses (every session's TUI in the server's process) against the alternative (one
`meshtui attach` process per session, as an SSH server spawning it in a pseudo-terminal would run).

Both attach to the same `meshtui controller` subprocess (its API, live watch). Every session shows
the detail view of one Service (a view redrawn on a 100 ms tick) at 120x36. A round applies new
Endpoints for that Service (a fresh address) through the API and times, per session, until that
session's terminal output contains the address: controller -> watch stream -> TUI cache -> the
view's tick -> rendering -> SSH (or pty) -> client. The reference is the same round with 1 session.

Memory: RSS of the serve-ssh process with no session, then after each step (per extra session =
growth / sessions); for the alternative, the RSS of each attach process (a lower bound: the SSH
server that would spawn them is not counted).

    .venv/bin/python -m benchmarks.ssh --counts 1,2,4,8,16 --process-counts 1,2,4 --rounds 20
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import random
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Callable

import asyncssh

from benchmarks.common import current_rss_mb, percentile, verdict
from controller.auth import read_tokens
from controller.remote import RemoteController
from controller.statefile import read_record

MESHTUI = str(Path(sys.executable).parent / "meshtui")
ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 36)
GOAL_MS = 100.0
SCENARIO = """
apiVersion: flomesh.io/v1alpha1
kind: Cluster
metadata: {name: cluster-1}
spec: {}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  ports: [{port: 9080, protocol: TCP}]
"""
DETAIL_TITLE = b"Service ratings.shop in cluster-1"


def endpoints(address: str) -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ratings", "namespace": "shop"},
             "subsets": [{"addresses": [{"ip": address}], "ports": [{"port": 9080}]}]}]


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


async def idle_cpu(pids: list[int], seconds: float = 4.0) -> float:
    """Percent of one core the processes use while nothing changes (redraw ticks, metric polls)."""
    before, started = cpu_seconds(pids), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (cpu_seconds(pids) - before) / (time.monotonic() - started)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MESHTUI_")}


class Screen:
    """A session's output as it arrives, with a needle to time."""

    def __init__(self) -> None:
        self.tail = b""
        self.seen = b""
        self.needle = b""
        self.found: asyncio.Future[float] | None = None

    def expect(self, needle: bytes) -> asyncio.Future[float]:
        self.needle, self.tail = needle, b""
        self.found = asyncio.get_running_loop().create_future()
        return self.found

    def feed(self, data: bytes) -> None:
        self.seen = (self.seen + data)[-65536:]
        if self.found is not None and not self.found.done():
            window = self.tail + data
            if self.needle in window:
                self.found.set_result(time.monotonic())
            self.tail = window[-len(self.needle):]


class SshSession:
    def __init__(self, conn: asyncssh.SSHClientConnection, proc: asyncssh.SSHClientProcess) -> None:
        self.conn, self.proc, self.screen = conn, proc, Screen()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while data := await self.proc.stdout.read(65536):
            self.screen.feed(data)

    def type(self, keys: str) -> None:
        self.proc.stdin.write(keys.encode())

    async def close(self) -> None:
        self.conn.close()
        self.reader.cancel()


class PtySession:
    """`meshtui attach` in a pseudo-terminal."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env={**env(), "TERM": "xterm-256color"},
                                     cwd=ROOT, start_new_session=True)
        os.close(slave)
        os.set_blocking(self.master, False)
        self.screen = Screen()
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if data:
            self.screen.feed(data)
        else:
            asyncio.get_running_loop().remove_reader(self.master)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    async def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        self.proc.kill()
        await asyncio.to_thread(self.proc.wait)
        os.close(self.master)


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def open_detail(session: SshSession | PtySession, started: float) -> float:
    """Services view, then the first (only) service's detail, as a person would press the keys.
    Returns the seconds from `started` (connecting) to the TUI's first screen."""
    await wait_for(lambda: b"Overview" in session.screen.seen, 60, "the TUI")
    first_screen = time.monotonic() - started
    session.type("2")
    await wait_for(lambda: b"ratings" in session.screen.seen, 30, "the Services view")
    await asyncio.sleep(0.3)
    session.type("\r")
    await wait_for(lambda: DETAIL_TITLE in session.screen.seen, 30, "the service detail")
    return first_screen


class Rounds:
    def __init__(self, api: RemoteController) -> None:
        self.api = api
        self.counter = 0

    async def run(self, sessions: list, rounds: int) -> tuple[list[float], list[float]]:
        """Latencies (ms) of `rounds` updates: every session's, and the slowest session's of each round."""
        latencies: list[float] = []
        slowest: list[float] = []
        for _ in range(rounds):
            self.counter += 1
            address = f"127.200.{self.counter // 250}.{self.counter % 250 + 1}"
            waits = [s.screen.expect(f"{address}:9080".encode()) for s in sessions]
            started = time.monotonic()
            await self.api.apply(endpoints(address), cluster="cluster-1")
            seen = await asyncio.wait_for(asyncio.gather(*waits), 30)
            latencies += [(t - started) * 1000 for t in seen]
            slowest.append((max(seen) - started) * 1000)
            await asyncio.sleep(random.uniform(0.05, 0.25))  # spread the rounds over the views' tick phase
        return latencies, slowest


def row(label: str, n: int, lat: tuple[list[float], list[float]], mem: str, cpu: float) -> str:
    every, slowest = lat
    return (f"| {label} | {n} | {percentile(every, 0.5):.0f} ms | {percentile(every, 0.95):.0f} ms | {percentile(slowest, 0.5):.0f} ms "
            f"| {max(slowest):.0f} ms | {mem} | {cpu:.0f}% | {verdict(percentile(every, 0.5) < GOAL_MS)} |")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        controller = subprocess.Popen([MESHTUI, "controller", "--state", str(state)], cwd=ROOT, env=env(),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        serve = None
        try:
            await wait_for(lambda: read_record(state) is not None, 60, "the controller")
            url, token = read_record(state).url, read_tokens(state).admin  # type: ignore[union-attr]
            api = await RemoteController.connect(url, token)
            await api.apply(SCENARIO, cluster="cluster-1")
            rounds = Rounds(api)
            lines = ["| design | sessions | update p50 | p95 | slowest screen p50 | max | memory | idle CPU | p50 < 100 ms |",
                     "|---|---|---|---|---|---|---|---|---|"]
            reference: float | None = None

            key = asyncssh.generate_private_key("ssh-ed25519")
            (Path(tmp) / "authorized_keys").write_text(key.export_public_key().decode())
            serve = subprocess.Popen([MESHTUI, "serve-ssh", "--state", str(state), "--listen", "127.0.0.1:0", "--log-format", "json",
                                      "--authorized-keys", str(Path(tmp) / "authorized_keys"), "--max-sessions", "256",
                                      "--rate-limit", "1000/1", "--idle-timeout", "0"],
                                     cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            port = 0
            while not port:
                line = await asyncio.to_thread(serve.stderr.readline)
                if not line:
                    raise RuntimeError("serve-ssh exited")
                msg = json.loads(line)["msg"]
                if msg.startswith("ssh server listening"):
                    port = int(msg.split("addr=127.0.0.1:")[1].split()[0])
            threading.Thread(target=serve.stderr.read, daemon=True).start()  # keep its log pipe flowing
            await asyncio.sleep(2)
            base = current_rss_mb(serve.pid)
            ssh_sessions: list[SshSession] = []
            startup: list[float] = []
            for n in args.counts:
                while len(ssh_sessions) < n:
                    started = time.monotonic()
                    conn = await asyncssh.connect("127.0.0.1", port, username=f"user{len(ssh_sessions)}", client_keys=[key],
                                                  known_hosts=None, agent_path=None)
                    proc = await conn.create_process(term_type="xterm-256color", term_size=SIZE, encoding=None)
                    ssh_sessions.append(SshSession(conn, proc))
                    startup.append(await open_detail(ssh_sessions[-1], started))
                await asyncio.sleep(1.5)
                rss = current_rss_mb(serve.pid)
                cpu = await idle_cpu([serve.pid])
                lat = await rounds.run(ssh_sessions, args.rounds)
                reference = reference or percentile(lat[0], 0.5)
                lines.append(row("in-process (serve-ssh)", n, lat,
                                 f"{rss:.0f} MB total, +{(rss - base) / n:.1f} MB/session (no session: {base:.0f} MB)", cpu))
                print(lines[-1], f" p50 vs 1 session: x{percentile(lat[0], 0.5) / reference:.2f}", flush=True)
            for s in ssh_sessions:
                await s.close()
            notes = [f"in-process: connect to first screen p50 {percentile(startup, 0.5):.2f}s over {len(startup)} sessions"]
            startup = []

            pty_sessions: list[PtySession] = []
            for n in args.process_counts:
                while len(pty_sessions) < n:
                    started = time.monotonic()
                    pty_sessions.append(PtySession([MESHTUI, "attach", url, "--token", token]))
                    startup.append(await open_detail(pty_sessions[-1], started))
                await asyncio.sleep(1.5)
                each = [current_rss_mb(s.proc.pid) for s in pty_sessions]
                cpu = await idle_cpu([s.proc.pid for s in pty_sessions])
                lat = await rounds.run(pty_sessions, args.rounds)
                lines.append(row("process per session (attach)", n, lat, f"{sum(each):.0f} MB total, {sum(each) / n:.1f} MB/session", cpu))
                print(lines[-1], flush=True)
            for p in pty_sessions:
                await p.close()
            if startup:
                notes.append(f"process per session: start to first screen p50 {percentile(startup, 0.5):.2f}s over {len(startup)} processes")
            await api.close()
            print()
            print("\n".join(lines))
            print("\n" + "\n".join(notes))
            print(f"\nload average {os.getloadavg()[0]:.1f}")
        finally:
            for proc in (serve, controller):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()


def counts(text: str) -> list[int]:
    return sorted({int(c) for c in text.split(",") if c.strip()})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=counts, default=[1, 2, 4, 8, 16], help="SSH sessions at each step (default 1,2,4,8,16)")
    ap.add_argument("--process-counts", type=counts, default=[1, 2, 4], help="attach processes at each step (default 1,2,4)")
    ap.add_argument("--rounds", type=int, default=20, help="updates timed at each step (default 20)")
    asyncio.run(main(ap.parse_args()))
