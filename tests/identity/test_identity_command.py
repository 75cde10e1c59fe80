"""`meshtui identity show` and `meshtui identity rotate-anchor` on a state dir with no running
controller (the proxies then load the new certificates when they start)."""
from __future__ import annotations

import json
import os

import pytest

from controller.identity import IdentityAuthority, read_report
from meshtui.cli.main import main


@pytest.fixture(autouse=True)
def no_controller_env(monkeypatch):
    for name in [k for k in os.environ if k.startswith("MESHTUI_")]:
        monkeypatch.delenv(name)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_show_lists_the_anchor_issuers_and_leaves(tmp_path, capsys):
    state = tmp_path / "state"
    code, _, err = run(capsys, "--state", str(state), "identity", "show")
    assert code == 1 and "no trust anchor under" in err and "`meshtui demo` or `meshtui controller`" in err
    ca = IdentityAuthority(state)
    ca.leaf("cluster-1", "meshtui-system", "gateway")
    ca.leaf("cluster-2", "curl", "curl")
    code, out, _ = run(capsys, "--state", str(state), "identity", "show")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "trust domain   meshtui.local"
    assert lines[1].startswith(f"trust anchor   {ca.anchor_fingerprint}  valid until ") and lines[1].endswith("(in 3649d)")  # just under ten years left
    assert [line.split()[0] for line in lines if line.startswith(("ISSUER", "cluster-", "LEAF", "spiffe://"))] == [
        "ISSUER", "cluster-1", "cluster-2", "LEAF",
        "spiffe://meshtui.local/cluster/cluster-1/ns/meshtui-system/sa/gateway",
        "spiffe://meshtui.local/cluster/cluster-2/ns/curl/sa/curl"]
    leaf_row = next(line for line in lines if line.startswith("spiffe://meshtui.local/cluster/cluster-2"))
    assert leaf_row.endswith(f"(in 23h)   {ca.anchor_fingerprint[:16]}"), leaf_row
    code, out, _ = run(capsys, "--state", str(state), "identity", "show", "-o", "json")
    shown = json.loads(out)
    assert (shown["trustAnchor"], shown["rotating"], len(shown["leaves"])) == (ca.anchor_fingerprint, False, 2)
    assert shown["leaves"][0]["renew_at"] < shown["leaves"][0]["not_after"]


def test_rotate_anchor_without_running_proxies_reissues_everything(tmp_path, capsys):
    state = tmp_path / "state"
    ca = IdentityAuthority(state)
    ca.leaf("cluster-1", "meshtui-system", "gateway")
    old = ca.anchor_fingerprint
    code, out, err = run(capsys, "--state", str(state), "identity", "rotate-anchor")
    assert code == 0, err
    report = read_report(state)
    assert report.anchor.anchor_fingerprint != old and report.previous is None
    assert {leaf.anchor_fingerprint for leaf in report.leaves} == {report.anchor.anchor_fingerprint}
    assert out.splitlines()[0] == "no running proxy found: proxies load the new certificates when they start"
    assert out.splitlines()[-1] == f"trust anchor rotated: {report.anchor.anchor_fingerprint}"
