"""Running the installed `meshtui` console script as a subprocess, as a user would."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from controller.federation.processes import find_federation_processes

from controller.statefile import ControllerRecord, read_record

ROOT = Path(__file__).resolve().parents[2]
MESHTUI = str(Path(sys.executable).parent / "meshtui")
FIXTURES = ROOT / "tests" / "fixtures"


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MESHTUI_")}


@dataclass
class Result:
    code: int
    out: str
    err: str


def meshtui(state: Path, *args: str, stdin: str | None = None, timeout: float = 30) -> Result:
    p = subprocess.run([MESHTUI, "--state", str(state), *args], input=stdin, capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT, env=cli_env())
    return Result(p.returncode, p.stdout, p.stderr)


def apply_reference(state: Path) -> list[Result]:
    f = lambda name: str(FIXTURES / name)  # noqa: E731
    return [
        meshtui(state, "apply", "-f", f("fsm_clusters.yaml")),
        meshtui(state, "apply", "--cluster", "cluster-1", "-f", f("fsm_httpbin_cluster-1.yaml"), "-f", f("fsm_export_cluster-1.yaml")),
        meshtui(state, "apply", "--cluster", "cluster-3", "-f", f("fsm_httpbin_cluster-3.yaml"), "-f", f("fsm_export_cluster-3.yaml")),
        meshtui(state, "apply", "--cluster", "cluster-2", "-n", "httpbin", "-f", f("fsm_gtp_failover.yaml")),
    ]


class HeadlessController:
    """`meshtui controller` over a state dir, stopped (killed if need be) in teardown."""

    def __init__(self, state: Path):
        self.state = state
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([MESHTUI, "controller", "--state", str(self.state), *args], cwd=ROOT, env=cli_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def wait_recorded(self, proc: subprocess.Popen, timeout: float = 15) -> ControllerRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = read_record(self.state)
            if record is not None and record.pid == proc.pid:
                return record
            if proc.poll() is not None:
                raise AssertionError(f"controller exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.05)
        raise AssertionError("controller did not record itself")

    def stop(self, proc: subprocess.Popen, timeout: float = 15) -> tuple[int, str]:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err


@pytest.fixture
def headless(tmp_path: Path) -> Iterator[HeadlessController]:
    controller = HeadlessController(tmp_path / "state")
    yield controller
    for proc in controller.procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    for pid in find_federation_processes(controller.state):  # proxies outlive a killed controller by design
        os.kill(pid, signal.SIGKILL)
