"""`meshtui controller` under load: SIGTERM while several clients apply and read without pause;
every request in flight at the signal completes, the process exits 0, and a restart serves the
state as the last acknowledged writes left it (each apply all or nothing)."""
from __future__ import annotations

import asyncio
import signal
import socket
import time
from dataclasses import dataclass

from controller.auth import read_tokens
from controller.errors import MeshError, Unavailable
from controller.remote import RemoteController
from tests.cli.conftest import meshtui
from tests.ssh.conftest import SCENARIO

WORKERS = 4
BATCH = 30  # Services per apply: long enough requests that several are in flight at any moment


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch(worker: int, generation: int) -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": f"w{worker}-s{i}", "namespace": "load", "labels": {"gen": str(generation)}},
             "spec": {"ports": [{"port": 80}]}} for i in range(BATCH)]


@dataclass
class Outcome:
    worker: int
    generation: int  # 0 for reads
    started: float
    ended: float
    error: MeshError | None


async def writer(remote: RemoteController, worker: int, outcomes: list[Outcome], done: asyncio.Event) -> None:
    generation = 0
    while not done.is_set():
        generation += 1
        started = time.monotonic()
        try:
            await remote.apply(batch(worker, generation), cluster="cluster-1")
            error = None
        except MeshError as e:
            error = e
        outcomes.append(Outcome(worker, generation, started, time.monotonic(), error))
        if isinstance(error, Unavailable) and "cannot reach" in error.message:
            return  # refused: the controller is gone


async def reader(remote: RemoteController, worker: int, outcomes: list[Outcome], done: asyncio.Event) -> None:
    while not done.is_set():
        started = time.monotonic()
        try:
            await remote.list("svc", cluster="cluster-1", namespace="load")
            error = None
        except MeshError as e:
            error = e
        outcomes.append(Outcome(worker, 0, started, time.monotonic(), error))
        if isinstance(error, Unavailable) and "cannot reach" in error.message:
            return


async def test_sigterm_under_load_fails_no_request_in_flight_and_the_state_survives(headless):
    state = headless.state
    api = f"127.0.0.1:{free_port()}"
    proc = headless.start("--api", api)
    record = await asyncio.to_thread(headless.wait_recorded, proc)
    assert meshtui(state, "apply", "--cluster", "cluster-1", "-f", "-", stdin=SCENARIO).code == 0  # through the API

    token = read_tokens(state).admin
    clients = [await RemoteController.connect(record.url, token, timeout=10) for _ in range(WORKERS + 2)]
    outcomes: list[Outcome] = []
    done = asyncio.Event()
    tasks = [asyncio.create_task(writer(c, i, outcomes, done)) for i, c in enumerate(clients[:WORKERS])]
    tasks += [asyncio.create_task(reader(c, WORKERS + i, outcomes, done)) for i, c in enumerate(clients[WORKERS:])]
    try:
        await asyncio.sleep(1.5)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=20)
        assert proc.returncode == 0, err
        await asyncio.sleep(0.3)
        done.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
    finally:
        done.set()
        for c in clients:
            await c.close()

    in_flight = [o for o in outcomes if o.started < signalled]
    crossing = [o for o in in_flight if o.ended > signalled]
    assert len(crossing) >= 2, "the load did not keep requests in flight at the signal"
    failed = [(o.worker, o.generation, o.error) for o in in_flight if o.error is not None]
    assert failed == [], failed
    late_errors = {type(o.error).__name__ for o in outcomes if o.error is not None}
    assert late_errors <= {"Unavailable"}, late_errors  # after the signal: refused, never a half answer or a 5xx
    assert sum(1 for o in outcomes if o.generation and o.error is None) > WORKERS * 3

    proc = headless.start("--api", api)
    record = await asyncio.to_thread(headless.wait_recorded, proc)
    restarted = await RemoteController.connect(record.url, token)
    try:
        stored = await restarted.list("svc", cluster="cluster-1", namespace="load")
        assert (await restarted.get("svc", "ratings", cluster="cluster-1", namespace="shop"))["metadata"]["name"] == "ratings"
    finally:
        await restarted.close()
    for worker in range(WORKERS):
        mine = [o for o in outcomes if o.worker == worker]
        acknowledged = max(o.generation for o in mine if o.error is None)
        attempted = max(o.generation for o in mine)
        generations = {s["metadata"]["labels"]["gen"] for s in stored if s["metadata"]["name"].startswith(f"w{worker}-")}
        assert len([s for s in stored if s["metadata"]["name"].startswith(f"w{worker}-")]) == BATCH
        assert len(generations) == 1, generations  # one apply's batch, never a mix
        assert acknowledged <= int(generations.pop()) <= attempted
    code, _ = await asyncio.to_thread(headless.stop, proc)
    assert code == 0
