"""Table cells computed from objects as the controller and its data plane report them."""
from __future__ import annotations

from datetime import datetime, timezone

from controller.interface import CheckResult
from meshtui.cli import output

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=timezone.utc)


def _cluster(status: dict) -> dict:
    return {"kind": "Cluster", "metadata": {"name": "c1", "annotations": {"meshtui.io/loopback": "127.0.11"},
                                            "creationTimestamp": "2026-01-02T11:00:00Z"}, "spec": {}, "status": status}


def test_age_uses_kubectl_units():
    assert [output.age(ts, NOW) for ts in ("2026-01-02T11:59:15Z", "2026-01-02T11:55:00Z", "2026-01-02T09:00:00Z",
                                           "2025-12-30T12:00:00Z", None, "yesterday")] == ["45s", "5m", "3h", "3d", "<none>", "<none>"]


def test_cluster_status_and_gateway_follow_the_data_plane_report():
    assert output.cluster_status(_cluster({})) == "Unknown"
    assert output.cluster_gateway(_cluster({})) == "127.0.11.1:4143"
    up = {"gateway": {"address": "127.0.11.1:5143", "up": True, "alive": True}, "outbound": {"up": True}}
    assert (output.cluster_status(_cluster(up)), output.cluster_gateway(_cluster(up))) == ("Ready", "127.0.11.1:5143")
    assert output.cluster_status(_cluster({**up, "gateway": {**up["gateway"], "alive": False}})) == "Unreachable"
    assert output.cluster_status(_cluster({**up, "outbound": {"up": False}})) == "Down"


def test_tables_align_columns_and_mark_empty_cells():
    link = {"kind": "Link", "metadata": {"name": "c1-c2", "creationTimestamp": "2026-01-02T11:59:00Z"},
            "spec": {"sourceCluster": "c1", "targetCluster": "c2"}, "status": {"alive": True, "latencyMs": 1.25}}
    quiet = {**link, "metadata": {**link["metadata"], "name": "c1-c3"}, "spec": {"sourceCluster": "c1", "targetCluster": "c3"}, "status": {}}
    text = output.object_table("Link", [link, quiet], show_cluster=False, show_namespace=False, now=NOW)
    assert text.splitlines() == [
        "NAME    SOURCE   TARGET   ALIVE    NUM_SVC   LATENCY   LATENCY_P50   LATENCY_P95   LATENCY_P99   AGE",
        "c1-c2   c1       c2       true     <none>    1.2ms     <none>        <none>        <none>        60s",
        "c1-c3   c1       c3       <none>   <none>    <none>    <none>        <none>        <none>        60s",
    ]


def test_checks_text_groups_results_and_hints_only_under_problems():
    results = [CheckResult("federation", "clusters", True, "3 clusters", ""),
               CheckResult("gateways", "probes", False, "cluster-3 down", "start it", warning=True),
               CheckResult("gateways", "certs", False, "expired", "rotate")]
    assert output.checks_text(results).splitlines() == [
        "federation", "----------", "✔ clusters", "",
        "gateways", "--------", "‼ probes", "    cluster-3 down", "    hint: start it", "✖ certs", "    expired", "    hint: rotate", "",
        "Status check results are ✖",
    ]
    assert output.checks_passed(results[:2]) is True
