"""DESIGN section 8 (FSM's walk-through) through the CLI against `meshtui demo --no-tui --scenario
fsm-blog`, then static stability: the controller SIGKILLed, the proxies keep serving."""
import json
import os
import signal
import subprocess
import time

import pytest

from controller.federation.processes import read_record
from tests.e2e.conftest import CLI, meshtui
from tests.support import FIXTURES

pytestmark = pytest.mark.timeout(150)
URL = "http://httpbin.httpbin:8080/"
HI = "Hi, I am from {} and controlled by mesh!"
LOCALITY_503 = "no local endpoints for httpbin.httpbin:8080 under policy Locality"


def curl(state, *args: str) -> subprocess.CompletedProcess:
    return meshtui(state, "curl", "--from", "cluster-2", URL, *args)


def answers(state, n: int) -> list[str]:
    out = []
    for _ in range(n):
        r = curl(state)
        assert r.returncode == 0, r.stderr
        out.append(r.stdout.strip())
    return out


def load_answers(state, rps: int = 40, duration: str = "0.5s") -> dict[str, int]:
    r = meshtui(state, "load", "--from", "cluster-2", URL, "--rps", str(rps), "--duration", duration, "-o", "json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["success_rate"] == 1.0, report
    return report["answers"]


def apply(state, *args: str, text: str | None = None) -> None:
    r = meshtui(state, "apply", *args, input=text)
    assert r.returncode == 0, r.stderr


def test_fsm_walkthrough_steps_1_to_4(demo_factory):
    demo = demo_factory("fsm-blog")
    state = demo.state
    assert "cluster-2" in demo.summary and "new federation" in demo.summary

    # 1. no GlobalTrafficPolicy: Locality, and no httpbin in cluster-2
    r = curl(state)
    assert (r.returncode, r.stdout.strip()) == (0, LOCALITY_503)
    failed = curl(state, "--fail")
    assert failed.returncode == 22 and "503" in failed.stderr and failed.stdout == ""

    # 2. FailOver to cluster-1 and cluster-3: they answer in turn
    apply(state, "--cluster", "cluster-2", "-n", "httpbin", "-f", str(FIXTURES / "fsm_gtp_failover.yaml"))
    seen = answers(state, 4)
    assert set(seen) == {HI.format("cluster-1"), HI.format("cluster-3")}, seen
    assert all(a != b for a, b in zip(seen, seen[1:])), seen  # consecutive answers alternate

    # 3. httpbin in cluster-2: every answer from cluster-2 (once its replica is up)
    apply(state, "--cluster", "cluster-2", "-f", str(FIXTURES / "fsm_httpbin_cluster-2.yaml"))
    deadline = time.monotonic() + 15
    while answers(state, 1) != ["Hi, I am from cluster-2!"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert load_answers(state) == {"Hi, I am from cluster-2!": 20}

    # 4. ActiveActive: all three clusters answer
    apply(state, "--cluster", "cluster-2", "-n", "httpbin", "-f", str(FIXTURES / "fsm_gtp_activeactive.yaml"))
    spread = load_answers(state, rps=60, duration="1s")
    assert set(spread) == {"Hi, I am from cluster-2!", HI.format("cluster-1"), HI.format("cluster-3")}, spread

    # the ServiceImport in cluster-2 lists cluster-1's and cluster-3's gateways
    r = meshtui(state, "get", "serviceimports", "httpbin", "-n", "httpbin", "--cluster", "cluster-2", "-o", "json")
    assert r.returncode == 0, r.stderr
    imp = json.loads(r.stdout)
    clusters = {c["metadata"]["name"]: c for c in json.loads(meshtui(state, "get", "clusters", "-o", "json").stdout)["items"]}
    endpoints = {e["clusterKey"]: e["target"] for p in imp["spec"]["ports"] for e in p["endpoints"]}
    assert set(endpoints) == {"default/default/default/cluster-1", "default/default/default/cluster-3"}
    for name in ("cluster-1", "cluster-3"):
        target = endpoints[f"default/default/default/{name}"]
        assert target["path"] == f"/{name}/httpbin-mesh"
        assert f"{target['host']}:{target['port']}" == clusters[name]["status"]["gateway"]["address"]
        assert clusters[name]["status"]["gateway"]["up"] is True

    # tap and stat see that traffic
    tap = subprocess.Popen([*CLI, "--state", str(state), "tap", "--to", "httpbin", "-n", "httpbin",
                            "--cluster", "cluster-2", "--max", "6", "-o", "json"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)  # the CLI starts and subscribes
        answers(state, 2)
        out, _ = tap.communicate(timeout=30)
    finally:
        tap.kill()
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) == 6 and all(e["dst_service"] == "httpbin" for e in events), events
    assert {e["kind"] for e in events} <= {"request_init", "response_init", "response_end"}
    r = meshtui(state, "stat", "--by", "edge", "--window", "1m", "-o", "json")
    assert r.returncode == 0, r.stderr
    edges = {(row["src_cluster"], row["dst_cluster"]) for row in json.loads(r.stdout) if row["requests"]}
    assert {("cluster-2", "cluster-1"), ("cluster-2", "cluster-3"), ("cluster-2", "cluster-2")} <= edges


def test_proxies_keep_serving_when_the_controller_is_killed(demo_factory):
    demo = demo_factory("fsm-blog")
    state = demo.state
    apply(state, "--cluster", "cluster-2", "-n", "httpbin", "-f", str(FIXTURES / "fsm_gtp_failover.yaml"))
    records = sorted((state / "proxies").glob("*/proxy.pid.json")) + sorted((state / "workloads").rglob("*.pid.json"))
    pids = {r: read_record(r)["pid"] for r in records}
    assert len(pids) == 3 + 3  # three proxies; httpbin in cluster-1 and -3, curl in cluster-2

    os.kill(demo.proc.pid, signal.SIGKILL)
    demo.proc.wait()
    # no controller: `meshtui curl` finds cluster-2's outbound proxy from the stored Cluster
    seen = answers(state, 4)
    assert set(seen) == {HI.format("cluster-1"), HI.format("cluster-3")}, seen
    assert all(os.path.exists(f"/proc/{pid}") for pid in pids.values())

    again = demo_factory("fsm-blog")  # a new controller adopts the running processes
    assert "resumed" in again.summary
    assert {r: read_record(r)["pid"] for r in records} == pids
    assert set(answers(state, 2)) == {HI.format("cluster-1"), HI.format("cluster-3")}
    r = meshtui(state, "check", "-o", "json")
    checks = {c["description"]: c["result"] for cat in json.loads(r.stdout)["categories"] for c in cat["checks"]}
    assert checks["every proxy is running the current routes"] == "success", checks
