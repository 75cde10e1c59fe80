"""`meshtui link` builds the Link (gateway address, trusted anchor, probe spec); `--print` gives
YAML that applies unchanged to another controller of the same clusters; without a trust anchor
the link is refused with the reason."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from controller.errors import InvalidResource
from controller.identity import IdentityAuthority
from controller.links import TRUST_ANCHOR_ANNOTATION, link_manifest
from meshtui.cli.main import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def cluster(name: str, **status) -> dict:
    return {"kind": "Cluster", "metadata": {"name": name, "annotations": {"meshtui.io/loopback": "127.0.11"}},
            "spec": {}, "status": status}


def test_the_manifest_names_the_gateway_the_anchor_and_the_probe_defaults():
    running = cluster("cluster-1", gateway={"address": "127.0.11.1:5143"}, admin={"address": "127.0.11.1:5191"})
    assert link_manifest("cluster-2", running, "ab" * 32) == {
        "apiVersion": "meshtui.io/v1alpha1", "kind": "Link",
        "metadata": {"name": "cluster-2-to-cluster-1", "annotations": {TRUST_ANCHOR_ANNOTATION: "ab" * 32}},
        "spec": {"sourceCluster": "cluster-2", "targetCluster": "cluster-1", "gatewayAddress": "127.0.11.1:5143",
                 "probe": {"path": "/ready", "port": 5191, "period": 3.0, "timeout": 1.0, "failureThreshold": 3}},
    }
    # no runtime status: the gateway from the spec, the default admin port
    spec = link_manifest("cluster-2", cluster("cluster-1"), "ab" * 32, period_s=1, failure_threshold=5)["spec"]
    assert (spec["gatewayAddress"], spec["probe"]["port"], spec["probe"]["period"], spec["probe"]["failureThreshold"]) == (
        "127.0.11.1:4143", 4191, 1, 5)
    with pytest.raises(InvalidResource, match="a cluster cannot link to itself"):
        link_manifest("cluster-1", cluster("cluster-1"), "ab" * 32)
    nowhere = {"kind": "Cluster", "metadata": {"name": "k8s"}, "spec": {"kubeconfig": "/k"}}
    with pytest.raises(InvalidResource, match="has no gateway address: set spec.gatewayHost"):
        link_manifest("cluster-1", nowhere, "ab" * 32)


def run(capsys, state: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--state", str(state), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_print_gives_yaml_that_applies_elsewhere(tmp_path, capsys, monkeypatch):
    for name in [k for k in os.environ if k.startswith("MESHTUI_")]:
        monkeypatch.delenv(name)
    here, there = tmp_path / "here", tmp_path / "there"
    for state in (here, there):
        assert run(capsys, state, "apply", "-f", str(FIXTURES / "fsm_clusters.yaml"))[0] == 0

    code, out, err = run(capsys, here, "link", "--from", "cluster-2", "--to", "cluster-1", "--print")
    assert code == 1 and "cannot link to cluster-1: no trust anchor under" in err  # no identities yet

    anchor = IdentityAuthority(here).anchor_fingerprint  # as the data plane's first start creates it
    code, printed, err = run(capsys, here, "link", "--from", "cluster-2", "--to", "cluster-1", "--print", "--probe-period", "5")
    assert code == 0, err
    doc = yaml.safe_load(printed)
    assert doc["metadata"]["annotations"] == {TRUST_ANCHOR_ANNOTATION: anchor}
    assert doc["spec"]["probe"]["period"] == 5 and doc["spec"]["gatewayAddress"].endswith(":4143")
    assert run(capsys, here, "get", "links")[2].strip() == "No resources found."  # --print created nothing

    (tmp_path / "link.yaml").write_text(printed)
    code, out, err = run(capsys, there, "apply", "-f", str(tmp_path / "link.yaml"))
    assert code == 0, err
    code, out, _ = run(capsys, there, "get", "link", "cluster-2-to-cluster-1", "-o", "yaml")
    stored = yaml.safe_load(out)
    assert stored["spec"] == doc["spec"] and stored["metadata"]["annotations"] == doc["metadata"]["annotations"]
