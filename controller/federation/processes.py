"""Supervised OS processes of the embedded federation (proxies and workload replicas).

Lifetime choice: every child runs in its own session and process group
(`start_new_session=True`) and is *not* tied to the controller's life (no
PR_SET_PDEATHSIG): the data plane must keep serving its last routes when the
controller dies (static stability, DESIGN section 4). A graceful stop of the
controller stops its children (SIGTERM to the group, SIGKILL after a timeout).
Each child has a pid record (pid, Linux start time, argv); a controller started
on the same state dir adopts a recorded process that still runs the same argv
instead of starting a duplicate, and stops one whose argv changed. Children
carry MESHTUI_FEDERATION=<state dir> in their environment so leftovers can be
found (`find_federation_processes`).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

FEDERATION_ENV = "MESHTUI_FEDERATION"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 3.0
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
STABLE_AFTER_S = 10.0  # a child that ran this long restarts without waiting


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # for status and logs, e.g. "proxy cluster-1"
    argv: tuple[str, ...]
    record: Path  # pid record (JSON)
    log: Path  # the child's stderr
    probe: tuple[str, int]  # a listening address: an adopted child is ready once it accepts
    env: dict[str, str] = field(default_factory=dict)


def start_time(pid: int) -> int | None:
    """The process' start time in clock ticks since boot (field 22 of /proc/<pid>/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return tuple(a.decode(errors="replace") for a in raw.split(b"\0")[:-1])


def read_record(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def recorded_process_alive(record: dict) -> bool:
    """The recorded process still runs (same pid and start time: not a reused pid)."""
    return start_time(record["pid"]) == record.get("start_time")


def kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def wait_pid_exit(pid: int) -> None:
    """Wait until a process that is not our child exits (pidfd; polling where pidfd is missing)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):
        while start_time(pid) is not None:
            await asyncio.sleep(0.2)
        return
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    loop.add_reader(fd, lambda: exited.done() or exited.set_result(None))
    try:
        await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def stop_recorded(record_path: Path, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the process of a pid record (if it still runs) and remove the record. True if one ran."""
    record = read_record(record_path)
    ran = False
    if record is not None and recorded_process_alive(record):
        ran = True
        kill_group(record["pid"], signal.SIGTERM)
        try:
            await asyncio.wait_for(wait_pid_exit(record["pid"]), timeout_s)
        except asyncio.TimeoutError:
            kill_group(record["pid"], signal.SIGKILL)
            await wait_pid_exit(record["pid"])
    record_path.unlink(missing_ok=True)
    return ran


def find_federation_processes(state_dir: Path) -> list[int]:
    """Pids of processes started for the federation of `state_dir` (by their environment)."""
    marker = f"{FEDERATION_ENV}={Path(state_dir).resolve()}".encode()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                out.append(int(entry.name))
        except OSError:
            continue
    return out


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


class Supervised:
    """One child kept running: started or adopted, restarted with backoff when it dies,
    stopped on request. `on_change(self)` is called whenever `ready` flips."""

    def __init__(self, spec: ProcessSpec, on_change: Callable[["Supervised"], None]) -> None:
        self.spec = spec
        self.on_change = on_change
        self.pid: int | None = None
        self.ready = False
        self.ever_ready = False
        self.restarts = 0
        self.last_error = ""
        self.adopted = False
        self._stopping = False
        self._ready_event = asyncio.Event()
        self.stopped = asyncio.Event()  # set once stop() has finished
        self._task: asyncio.Task | None = None
        self._drain: asyncio.Task | None = None
        self._proc: asyncio.subprocess.Process | None = None

    def start(self) -> None:
        """Start (or, after stop(), start again) and keep it running."""
        self._stopping = False
        self.stopped.clear()
        self._task = asyncio.create_task(self._run(), name=self.spec.name)

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> bool:
        try:
            await asyncio.wait_for(self._ready_event.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        self._stopping = True
        pid = self.pid
        if pid is not None:
            kill_group(pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self._exited(pid), timeout_s)
            except asyncio.TimeoutError:
                kill_group(pid, signal.SIGKILL)
                await self._exited(pid)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.spec.record.unlink(missing_ok=True)
        self._set_ready(False)
        self.stopped.set()

    # the loop ---------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        first = True
        while not self._stopping:
            pid = await self._adopt() if first else None
            first = False
            if pid is None:
                pid = await self._spawn()
            if pid is not None:
                started = time.monotonic()
                self._set_ready(True)
                await self._exited(pid)
                self._set_ready(False)
                if self._stopping:
                    return
                self.last_error = f"exited ({self._exit_text()}); restarting"
                log.warning("%s %s", self.spec.name, self.last_error)
                if time.monotonic() - started > STABLE_AFTER_S:
                    backoff = BACKOFF_MIN_S
            self.pid = None
            self.spec.record.unlink(missing_ok=True)
            self.restarts += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _adopt(self) -> int | None:
        record = read_record(self.spec.record)
        if record is None or not recorded_process_alive(record):
            self.spec.record.unlink(missing_ok=True)
            return None
        pid = record["pid"]
        if tuple(record.get("argv", ())) != self.spec.argv or cmdline(pid) != self.spec.argv:
            await stop_recorded(self.spec.record)  # ours, but started with other arguments
            return None
        self.pid, self.adopted = pid, True
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not await _accepts(*self.spec.probe):
            if time.monotonic() > deadline or start_time(pid) is None:
                await stop_recorded(self.spec.record)
                self.pid, self.adopted = None, False
                return None
            await asyncio.sleep(0.05)
        log.info("%s: adopted running pid %d", self.spec.name, pid)
        return pid

    async def _spawn(self) -> int | None:
        self.spec.log.parent.mkdir(parents=True, exist_ok=True)
        self.adopted = False
        with open(self.spec.log, "ab") as err:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self.spec.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=err, start_new_session=True, env={**os.environ, **self.spec.env},
                )
            except OSError as e:
                self.last_error = f"cannot start: {e}"
                return None
        self._proc, self.pid = proc, proc.pid
        record = {"pid": proc.pid, "start_time": start_time(proc.pid), "argv": list(self.spec.argv)}
        self.spec.record.parent.mkdir(parents=True, exist_ok=True)
        self.spec.record.write_text(json.dumps(record))
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            line = b""
        if line.strip() != b"ready":
            kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            self.last_error = f"did not become ready ({self._exit_text()}): {self._log_tail()}"
            log.warning("%s %s", self.spec.name, self.last_error)
            return None
        self._drain = asyncio.create_task(proc.stdout.read())  # nothing more is expected; keep the pipe drained
        self.last_error = ""
        return proc.pid

    async def _exited(self, pid: int) -> None:
        if self._proc is not None and self._proc.pid == pid:
            await self._proc.wait()
        else:
            await wait_pid_exit(pid)

    def _exit_text(self) -> str:
        code = self._proc.returncode if self._proc is not None and self._proc.pid == self.pid else None
        if code is None:
            return "exit status unknown"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def _log_tail(self) -> str:
        try:
            lines = self.spec.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else "(no output)"

    def _set_ready(self, ready: bool) -> None:
        if ready == self.ready:
            return
        self.ready = ready
        if ready:
            self.ever_ready = True
            self._ready_event.set()
        else:
            self._ready_event.clear()
        self.on_change(self)
