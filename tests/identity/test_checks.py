"""The identity checks of `meshtui check` (pure, over the authority's report and what proxies say
they loaded): each failure cause gives a failed check with its hint."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

from controller.checks import RENEW_HINT, certificate_checks, link_checks, trust_checks
from controller.identity import IdentityAuthority, read_report
from controller.identity.report import IdentityReport

CLUSTERS = ("a", "b")


def authority(tmp_path, **ttls) -> tuple[IdentityAuthority, list[datetime]]:
    """An authority with two clusters' leaves, and its clock (a one-item list the test moves)."""
    now = [datetime.now(timezone.utc).replace(microsecond=0)]
    ca = IdentityAuthority(tmp_path / "state", clock=lambda: now[0], **ttls)
    for c in CLUSTERS:
        ca.leaf(c, "meshtui-system", "gateway", ttl=timedelta(hours=24))
        ca.leaf(c, "default", "default", ttl=timedelta(hours=24))
    return ca, now


def by_name(results) -> dict:
    return {r.name: r for r in results}


def proxy_tls(report: IdentityReport, cluster: str) -> dict:
    """What a proxy of `cluster` that loaded the files on disk answers on GET /tls."""
    ids = {}
    for leaf in report.leaves:
        if leaf.identity.cluster == cluster:
            ids[f"{leaf.identity.namespace}/{leaf.identity.service_account}"] = {
                "identity": leaf.identity.uri, "not_after": leaf.not_after.isoformat(), "anchor": leaf.anchor_fingerprint}
    return {"enabled": True, "trust_anchors": report.trusted, "identities": ids}


def link(name: str, fingerprint: str | None, **status) -> dict:
    annotations = {"meshtui.io/trust-anchor-sha256": fingerprint} if fingerprint else {}
    return {"kind": "Link", "metadata": {"name": name, "annotations": annotations},
            "spec": {"sourceCluster": "a", "targetCluster": "b"}, "status": status}


def test_fresh_certificates_pass(tmp_path):
    ca, now = authority(tmp_path)
    report = read_report(tmp_path / "state")
    results = certificate_checks(report, now[0])
    assert all(r.ok for r in results), results
    assert by_name(results)["every leaf certificate is valid and not near expiry"].message == "4 leaves valid"
    proxies = {c: proxy_tls(report, c) for c in CLUSTERS}
    results = trust_checks(report, proxies, [link("a-to-b", ca.anchor_fingerprint)])
    assert all(r.ok for r in results), results


def test_expired_and_nearly_expired_leaves_fail_with_the_renewal_hint(tmp_path):
    ca, now = authority(tmp_path)
    report = read_report(tmp_path / "state")
    leaf = by_name(certificate_checks(report, now[0] + timedelta(hours=21)))["every leaf certificate is valid and not near expiry"]
    assert not leaf.ok and leaf.hint == RENEW_HINT
    assert "spiffe://meshtui.local/cluster/a/ns/default/sa/default: expires at" in leaf.message and "(in 3h)" in leaf.message
    leaf = by_name(certificate_checks(report, now[0] + timedelta(hours=25)))["every leaf certificate is valid and not near expiry"]
    assert not leaf.ok and leaf.message.count("expired at") == 4


def test_an_anchor_or_issuer_near_expiry_fails_with_its_hint(tmp_path):
    ca, now = authority(tmp_path, anchor_ttl=timedelta(days=90), issuer_ttl=timedelta(days=30))
    report = read_report(tmp_path / "state")
    checks = by_name(certificate_checks(report, now[0] + timedelta(days=26)))
    issuers = checks["every cluster's issuer is valid and not near expiry"]
    assert not issuers.ok and issuers.message.startswith("a: expires at") and "re-issues them all" in issuers.hint
    assert checks["trust anchor is valid and not near expiry"].ok  # 64 days left: more than a sixth of its 90
    checks = by_name(certificate_checks(report, now[0] + timedelta(days=80)))
    anchor = checks["trust anchor is valid and not near expiry"]
    assert not anchor.ok and "(in 10d)" in anchor.message and anchor.hint == "rotate it before it expires: `meshtui identity rotate-anchor`"


def test_a_leaf_of_another_anchor_and_an_unreadable_file_fail(tmp_path):
    ca, now = authority(tmp_path)
    stranger = IdentityAuthority(tmp_path / "elsewhere").leaf("b", "shop", "web")
    shutil.copytree(stranger.cert_path.parent, tmp_path / "state/identity/leaves/b/shop/web")
    (tmp_path / "state/identity/leaves/a/default/default/cert.pem").write_text("not a certificate")
    report = read_report(tmp_path / "state")
    checks = by_name(certificate_checks(report, now[0]))
    chains = checks["every certificate chains to the trust anchor"]
    assert not chains.ok and chains.message == "spiffe://meshtui.local/cluster/b/ns/shop/sa/web"
    assert "rotate-anchor" in chains.hint
    leaves = checks["every leaf certificate is valid and not near expiry"]
    assert not leaves.ok and "leaves/a/default/default/cert.pem holds no valid PEM certificate" in leaves.message


def test_proxies_on_another_anchor_or_serving_old_leaves_fail_with_hints(tmp_path):
    ca, now = authority(tmp_path)
    before = read_report(tmp_path / "state")
    loaded = {c: proxy_tls(before, c) for c in CLUSTERS}
    now[0] += timedelta(hours=17)
    assert len(ca.renew_due()) == 4  # renewed on disk; the proxies did not reload
    after = read_report(tmp_path / "state")
    checks = by_name(trust_checks(after, loaded, []))
    assert checks["every cluster is on the same trust anchor"].ok
    stale = checks["every proxy serves its latest leaves"]
    assert not stale.ok and stale.message.startswith("a default/default: serves a leaf expiring") and "POST /tls/reload" in stale.hint

    ca.begin_rotation()  # a new anchor the proxies never loaded
    rotating = read_report(tmp_path / "state")
    loaded["b"] = "GET http://127.0.0.1:4191/tls: Cannot connect"
    loaded["a"]["identities"]["default/default"] = {"error": "cannot load cert.pem: PEM lib"}
    same = by_name(trust_checks(rotating, loaded, []))["every cluster is on the same trust anchor"]
    assert not same.ok and "rotate-anchor" in same.hint
    assert same.message == ("a: its proxy does not trust the current anchor " + rotating.anchor.anchor_fingerprint[:16]
                            + "; a default/default: cannot load cert.pem: PEM lib; b: GET http://127.0.0.1:4191/tls: Cannot connect")


def test_links_with_a_foreign_anchor_or_a_dead_gateway_fail_with_hints(tmp_path):
    ca, now = authority(tmp_path)
    report = read_report(tmp_path / "state")
    trust = by_name(trust_checks(report, {}, [link("a-to-b", "0" * 64), link("a-to-c", None)]))["every link trusts the federation's trust anchor"]
    assert not trust.ok and trust.message == "a-to-b: trusts 0000000000000000; a-to-c: trusts no anchor"
    assert trust.hint.startswith("re-create the link: `meshtui link --from A --to B`")
    [alive] = link_checks([link("a-to-b", ca.anchor_fingerprint, alive=False, consecutiveFailures=3,
                                lastError="http://127.0.12.1:4191/ready: Cannot connect"),
                           link("a-to-c", ca.anchor_fingerprint, alive=True)])
    assert not alive.ok and alive.message == ("a-to-b: gateway of b is dead after 3 failed probes "
                                              "(http://127.0.12.1:4191/ready: Cannot connect)")
    assert "meshtui get clusters" in alive.hint
