import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.settings import random_loopback_base
from tests.running import kill_leftovers

CLI = [sys.executable, "-c", "import sys; from meshtui.cli.main import main; sys.exit(main())"]
READY_TIMEOUT_S = 60.0


@dataclass
class Demo:
    state: Path
    proc: subprocess.Popen
    summary: str


def meshtui(state: Path, *args: str, timeout: float = 60.0, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--state", str(state), *args], capture_output=True, text=True, timeout=timeout, input=input)


def start_demo(state: Path, scenario: str, loopback_base: str) -> Demo:
    log = open(state.parent / f"demo-{time.monotonic_ns()}.log", "wb")
    proc = subprocess.Popen([*CLI, "demo", "--no-tui", "--scenario", scenario, "--state", str(state),
                             "--loopback-base", loopback_base],
                            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    lines = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip() == "ready":
            return Demo(state, proc, "".join(lines))
        lines.append(line)
    proc.kill()
    raise AssertionError(f"meshtui demo did not become ready:\n{''.join(lines)}\n{Path(log.name).read_text()[-3000:]}")


def stop_demo(demo: Demo) -> None:
    if demo.proc.poll() is None:
        demo.proc.send_signal(signal.SIGTERM)
        try:
            demo.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(demo.proc.pid, signal.SIGKILL)
            demo.proc.wait()


@pytest.fixture
def demo_factory(tmp_path):
    """Start `meshtui demo --no-tui` on a state dir of the test; everything is stopped after it,
    and no process of the federation may be left running."""
    started: list[Demo] = []
    state = tmp_path / "state"
    base = random_loopback_base()

    def start(scenario: str = "fsm-blog") -> Demo:
        demo = start_demo(state, scenario, base)
        started.append(demo)
        return demo

    yield start
    for demo in started:
        stop_demo(demo)
    left = kill_leftovers(state)
    assert left == [], f"processes left running: {left}"
