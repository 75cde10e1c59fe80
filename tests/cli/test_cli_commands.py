"""The CLI end to end as subprocesses over an in-process controller (no controller running)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.statefile import StoreLock
from meshtui.cli.main import main

from .conftest import FIXTURES, apply_reference, meshtui

BAD_GTP = """\
apiVersion: flomesh.io/v1alpha1
kind: Cluster
metadata:
  name: cluster-9
spec: {}
---
apiVersion: flomesh.io/v1alpha1
kind: GlobalTrafficPolicy
metadata:
  name: httpbin
spec:
  lbType: FailOver
  targets:
    - clusterKey: default/default/default/cluster-1
      weight: -5
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    state = tmp_path_factory.mktemp("scenario") / "state"
    return state, apply_reference(state)


def _store_bytes(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((state / "store").iterdir())}


def test_apply_reports_each_object_like_kubectl(scenario):
    _, results = scenario
    assert [r.code for r in results] == [0, 0, 0, 0]
    assert results[0].out.splitlines() == ["cluster/cluster-1 configured", "cluster/cluster-2 configured", "cluster/cluster-3 configured"]
    assert results[1].out.splitlines() == [
        "workload/httpbin configured", "service/httpbin configured", "service/httpbin-cluster-1 configured",
        "serviceexport/httpbin configured", "serviceexport/httpbin-cluster-1 configured",
    ]
    assert results[3].out == "globaltrafficpolicy/httpbin configured\n"


def test_cluster_2_imports_httpbin_from_clusters_1_and_3(scenario):
    state, _ = scenario
    r = meshtui(state, "get", "serviceimports", "--cluster", "cluster-2", "-n", "httpbin", "-o", "json")
    assert r.code == 0, r.err
    listing = json.loads(r.out)
    assert listing["kind"] == "List"
    [imp] = [o for o in listing["items"] if o["metadata"]["name"] == "httpbin"]
    endpoints = {e["clusterKey"]: e["target"]["path"] for p in imp["spec"]["ports"] for e in p["endpoints"]}
    assert endpoints == {
        "default/default/default/cluster-1": "/cluster-1/httpbin-mesh",
        "default/default/default/cluster-3": "/cluster-3/httpbin-mesh",
    }


def test_get_across_clusters_has_a_cluster_column(scenario):
    state, _ = scenario
    r = meshtui(state, "get", "svcexp", "-A")
    assert r.code == 0, r.err
    header, *rows = [line.split() for line in r.out.splitlines()]
    assert header == ["CLUSTER", "NAMESPACE", "NAME", "RULES", "AUDIENCE", "VALID", "CONFLICT", "AGE"]
    assert [row[:7] for row in rows] == [
        ["cluster-1", "httpbin", "httpbin", "8080:/cluster-1/httpbin-mesh", "*", "True", "False"],
        ["cluster-1", "httpbin", "httpbin-cluster-1", "8080:/cluster-1/httpbin-mesh-cluster-1", "*", "True", "False"],
        ["cluster-3", "httpbin", "httpbin", "8080:/cluster-3/httpbin-mesh", "*", "True", "False"],
        ["cluster-3", "httpbin", "httpbin-cluster-3", "8080:/cluster-3/httpbin-mesh-cluster-3", "*", "True", "False"],
    ]
    # one cluster: no CLUSTER column
    r = meshtui(state, "get", "gtp", "httpbin", "-n", "httpbin", "--cluster", "cluster-2")
    header, row = [line.split() for line in r.out.splitlines()]
    assert header == ["NAME", "LBTYPE", "TARGETS", "AGE"]
    assert row[:3] == ["httpbin", "FailOver", "default/default/default/cluster-1,default/default/default/cluster-3"]


def test_get_clusters_shows_keys_and_gateways(scenario):
    state, _ = scenario
    r = meshtui(state, "get", "clusters", "-o", "wide")
    header, *rows = [line.split() for line in r.out.splitlines()]
    assert header[:4] == ["NAME", "CLUSTERKEY", "GATEWAY", "STATUS"]
    assert [row[:2] for row in rows] == [[f"cluster-{i}", f"default/default/default/cluster-{i}"] for i in (1, 2, 3)]
    assert all(row[2].endswith(":4143") for row in rows)


def test_bad_input_is_one_line_naming_file_document_and_field_and_stores_nothing(scenario, tmp_path):
    state, _ = scenario
    before = _store_bytes(state)
    bad = tmp_path / "bad-policy.yaml"
    bad.write_text(BAD_GTP)
    r = meshtui(state, "apply", "--cluster", "cluster-2", "-n", "httpbin", "-f", str(bad))
    assert r.code == 1 and r.out == ""
    assert r.err.count("\n") == 1
    assert r.err.startswith(f"error: {bad} document 2 (GlobalTrafficPolicy ")
    assert "field spec.targets[0].weight:" in r.err
    r = meshtui(state, "apply", "-f", "-", stdin="kind: [\n")
    assert (r.code, r.err.count("\n")) == (1, 1)
    assert r.err.startswith("error: <stdin>: malformed YAML at line 2 column 1:")
    assert _store_bytes(state) == before
    assert "cluster-9" not in meshtui(state, "get", "clusters").out


def run_main(capsys: pytest.CaptureFixture, state: Path, *args: str) -> tuple[int, str, str]:
    """The same entry point in this process (faster than a subprocess for many calls)."""
    code = main(["--state", str(state), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_global_options_go_before_or_after_the_command(tmp_path, capsys):
    assert main(["apply", "-f", str(FIXTURES / "fsm_clusters.yaml"), "--state", str(tmp_path / "a")]) == 0
    assert main(["--state", str(tmp_path / "b"), "get", "clusters"]) == 0
    assert main(["get", "clusters", "--cluster", "cluster-1", "--state", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert err == "No resources found.\n"  # b is empty
    assert [line.split()[0] for line in out.splitlines()] == [
        "cluster/cluster-1", "cluster/cluster-2", "cluster/cluster-3", "NAME", "cluster-1", "cluster-2", "cluster-3"]


def test_usage_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as usage:
        main(["--state", str(tmp_path), "get"])
    assert usage.value.code == 2 and "KIND" in capsys.readouterr().err
    assert run_main(capsys, tmp_path, "get", "svc", "httpbin", "-A") == (
        2, "", "meshtui: error: a resource cannot be retrieved by name across all namespaces\n")


def test_check_lists_problems_with_hints_and_fails(tmp_path, capsys):
    state = tmp_path / "state"
    assert run_main(capsys, state, "apply", "-f", str(FIXTURES / "fsm_clusters.yaml"))[0] == 0
    assert run_main(capsys, state, "apply", "--cluster", "cluster-2", "-n", "httpbin", "-f", str(FIXTURES / "fsm_gtp_failover.yaml"))[0] == 0
    code, out, _ = run_main(capsys, state, "check")
    assert code == 0 and out.rstrip().endswith("Status check results are ✔")
    assert run_main(capsys, state, "delete", "cluster", "cluster-3") == (0, "cluster/cluster-3 deleted\n", "")
    code, out, _ = run_main(capsys, state, "check")
    assert code == 1
    lines = out.splitlines()
    failed = lines.index("✖ policies name known clusters")
    assert lines[failed + 1] == "    cluster-2/httpbin/httpbin -> default/default/default/cluster-3"
    assert lines[failed + 2].startswith("    hint: fix spec.targets[].clusterKey")
    assert "✔ at least one member cluster" in lines and lines[-1] == "Status check results are ✖"
    code, out, _ = run_main(capsys, state, "check", "-o", "json")
    report = json.loads(out)
    assert code == 1 and report["success"] is False
    [policies] = [c for cat in report["categories"] for c in cat["checks"] if c["description"] == "policies name known clusters"]
    assert policies["result"] == "error" and "cluster-3" in policies["error"]


def test_a_store_held_by_a_process_without_an_api_is_refused(tmp_path):
    state = tmp_path / "state"
    lock = StoreLock(state)
    lock.acquire()
    try:
        r = meshtui(state, "get", "clusters")
    finally:
        lock.release()
    assert r.code == 1
    assert r.err.startswith(f"error: the store at {state} is in use by another meshtui process (pid ")
    assert "serves no API" in r.err
