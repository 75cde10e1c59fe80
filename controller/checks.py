"""Health checks in the spirit of `linkerd check` and `linkerd multicluster check`. Pure: they
read the resource core's state and derived status, the certificate authority's report and what
the proxies say they loaded, and say what is wrong and how to fix it."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from controller.identity.describe import CertInfo
from controller.identity.report import IdentityReport
from controller.interface import CheckResult
from controller.reconcile.endpoints import local_endpoints
from controller.reconcile.state import FederationState

TRUST_ANCHOR_ANNOTATION = "meshtui.io/trust-anchor-sha256"  # as controller/links/manifest.py writes it
CA_NEAR_EXPIRY = timedelta(days=60)  # as `linkerd check`'s "not valid for at least 60 days"
RENEW_HINT = ("the running controller (`meshtui demo` or `meshtui controller`) renews leaves at two thirds of "
              "their lifetime: is it running? see `meshtui identity show`")


def resource_checks(state: FederationState, status: dict, imports: dict) -> list[CheckResult]:
    out: list[CheckResult] = []
    by_key = state.cluster_by_key()

    out.append(CheckResult("federation", "at least one member cluster", bool(state.clusters),
                           f"{len(state.clusters)} clusters" if state.clusters else "no Cluster resources",
                           "" if state.clusters else "apply a Cluster manifest, or run `meshtui demo`"))

    bad_exports, conflicts = [], []
    for (ns, name), per_cluster in sorted(state.exports.items()):
        for cluster, _ in sorted(per_cluster.items()):
            for cond in status.get(("ServiceExport", cluster, ns, name), {}).get("conditions", []):
                if cond["type"] == "Valid" and cond["status"] == "False":
                    bad_exports.append(f"{cluster}/{ns}/{name}: {cond['message']}")
                if cond["type"] == "Conflict" and cond["status"] == "True":
                    conflicts.append(f"{cluster}/{ns}/{name}: {cond['reason']}: {cond['message']}")
    out.append(CheckResult("resources", "exports have a Service", not bad_exports,
                           "; ".join(bad_exports) or f"{sum(len(v) for v in state.exports.values())} exports valid",
                           "create the Service in the exporting cluster, or delete the export" if bad_exports else ""))
    no_endpoints = []
    for (ns, name), per_cluster in sorted(state.exports.items()):
        for cluster, export in sorted(per_cluster.items()):
            conditions = status.get(("ServiceExport", cluster, ns, name), {}).get("conditions", [])
            if any(c["type"] == "Valid" and c["status"] == "False" for c in conditions):
                continue  # reported above
            ports = [r.get("portNumber") for r in export["spec"].get("rules") or [] if r.get("portNumber")]
            ports = ports or [p["port"] for p in state.services[(cluster, ns, name)]["spec"].get("ports", [])]
            empty_ports = [str(port) for port in ports if not local_endpoints(state, cluster, ns, name, port)]
            if empty_ports:
                no_endpoints.append(f"{cluster}/{ns}/{name}: no endpoint for port {', '.join(empty_ports)}")
    out.append(CheckResult("resources", "exports have endpoints", not no_endpoints,
                           "; ".join(no_endpoints) or "every export has local endpoints",
                           "run a Workload the Service selects, or give the Service Endpoints" if no_endpoints else ""))
    out.append(CheckResult("resources", "exports agree with each other (no MCS conflicts)", not conflicts,
                           "; ".join(conflicts) or "no conflicts",
                           "make the conflicting export's Service ports and protocols match the oldest export" if conflicts else ""))

    unknown = []
    for (c, ns, name), pol in sorted(state.policies.items()):
        for t in pol["spec"].get("targets", []):
            if t["clusterKey"] not in by_key:
                unknown.append(f"{c}/{ns}/{name} -> {t['clusterKey']}")
    out.append(CheckResult("resources", "policies name known clusters", not unknown,
                           "; ".join(unknown) or f"{len(state.policies)} policies",
                           "fix spec.targets[].clusterKey (region/zone/group/name) or re-add the cluster" if unknown else ""))

    empty = sorted(f"{c}/{ns}/{name}" for (c, ns, name), imp in imports.items() if not any(p["endpoints"] for p in imp["spec"]["ports"]))
    out.append(CheckResult("resources", "imports have endpoints", not empty, "; ".join(empty) or f"{len(imports)} imports",
                           "check the exporting clusters' gateways and exports" if empty else ""))
    return out


# identity ----------------------------------------------------------------------------------
def _lifetime_problem(info: CertInfo, now: datetime, near: timedelta) -> str | None:
    if now < info.not_before:
        return f"not valid before {info.not_before.isoformat()}"
    if now >= info.not_after:
        return f"expired at {info.not_after.isoformat()}"
    if info.not_after - now < near:
        return f"expires at {info.not_after.isoformat()} (in {_span(info.not_after - now)})"
    return None


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ca_near(info: CertInfo) -> timedelta:
    return min(CA_NEAR_EXPIRY, (info.not_after - info.not_before) / 6)


def _leaf_name(info: CertInfo) -> str:
    return info.identity.uri if info.identity else str(info.path)


def certificate_checks(report: IdentityReport, now: datetime) -> list[CheckResult]:
    """Each certificate valid now and not near expiry (a leaf: more than a sixth of its lifetime
    left, i.e. its renewal, due at a third, is not badly late; an anchor or issuer: 60 days, or
    a sixth of a shorter lifetime), and chaining to a trusted anchor."""
    out = []
    anchors = [report.anchor] + ([report.previous] if report.previous else [])
    bad = [f"{a.anchor_fingerprint[:16] if a.anchor_fingerprint else a.subject}: {why}"
           for a in anchors if (why := _lifetime_problem(a, now, _ca_near(a)))]
    out.append(CheckResult("identity", "trust anchor is valid and not near expiry", not bad,
                           "; ".join(bad) or f"trust anchor {report.anchor.anchor_fingerprint[:16]} valid until "
                                              f"{report.anchor.not_after.date().isoformat()}",
                           "rotate it before it expires: `meshtui identity rotate-anchor`" if bad else ""))
    bad = [f"{c}: {why}" for c, i in sorted(report.issuers.items()) if (why := _lifetime_problem(i, now, _ca_near(i)))]
    out.append(CheckResult("identity", "every cluster's issuer is valid and not near expiry", not bad,
                           "; ".join(bad) or f"{len(report.issuers)} issuers valid",
                           "issuers are re-issued with the next leaf they sign: `meshtui identity rotate-anchor` "
                           "re-issues them all now" if bad else ""))
    bad = [f"{_leaf_name(i)}: {why}" for i in report.leaves
           if (why := _lifetime_problem(i, now, (i.not_after - i.not_before) / 6))]
    bad += report.unreadable
    out.append(CheckResult("identity", "every leaf certificate is valid and not near expiry", not bad,
                           "; ".join(bad) or f"{len(report.leaves)} leaves valid", RENEW_HINT if bad else ""))
    trusted = set(report.trusted)
    stray = [f"{_leaf_name(i)}" for i in report.leaves if i.anchor_fingerprint not in trusted]
    stray += [f"issuer of {c}" for c, i in sorted(report.issuers.items()) if i.anchor_fingerprint not in trusted]
    out.append(CheckResult("identity", "every certificate chains to the trust anchor", not stray,
                           "; ".join(stray) or f"all chain to {report.anchor.anchor_fingerprint[:16]}",
                           "finish the rotation: `meshtui identity rotate-anchor` (it resumes an unfinished one)"
                           if stray else ""))
    return out


def trust_checks(report: IdentityReport, proxies: dict[str, dict[str, Any] | str], links: list[dict[str, Any]]
                 ) -> list[CheckResult]:
    """`proxies`: cluster -> what its proxy's GET /tls answered (or why it did not answer)."""
    current = report.anchor.anchor_fingerprint
    trusted = set(report.trusted)
    on_disk = {(i.identity.cluster, i.identity.namespace, i.identity.service_account): i for i in report.leaves if i.identity}
    bad = []
    for cluster, tls in sorted(proxies.items()):
        if isinstance(tls, str):
            bad.append(f"{cluster}: {tls}")
            continue
        if not tls.get("enabled"):
            bad.append(f"{cluster}: its proxy runs without mTLS")
            continue
        if current not in tls.get("trust_anchors", []):
            bad.append(f"{cluster}: its proxy does not trust the current anchor {current[:16]}")
        for name, ident in sorted(tls.get("identities", {}).items()):
            if ident.get("error"):
                bad.append(f"{cluster} {name}: {ident['error']}")
            elif ident.get("anchor") not in trusted:
                bad.append(f"{cluster} {name}: its leaf chains to an anchor the federation does not trust")
    out = [CheckResult("identity", "every cluster is on the same trust anchor", not bad,
                       "; ".join(bad) or f"{len(proxies)} proxies trust {current[:16]}",
                       "have the proxies reload: `meshtui identity rotate-anchor` resumes a rotation; a proxy "
                       "restarted by the controller loads its files" if bad else "")]
    stale = []
    for cluster, tls in sorted(proxies.items()):
        if isinstance(tls, str) or not tls.get("enabled"):
            continue
        for name, ident in sorted(tls.get("identities", {}).items()):
            namespace, _, account = name.partition("/")
            disk = on_disk.get((cluster, namespace, account))
            if disk is not None and ident.get("not_after") and ident["not_after"] != disk.not_after.isoformat():
                stale.append(f"{cluster} {name}: serves a leaf expiring {ident['not_after']}, the renewed one "
                             f"expires {disk.not_after.isoformat()}")
    out.append(CheckResult("identity", "every proxy serves its latest leaves", not stale,
                           "; ".join(stale) or "every proxy reloaded its renewed leaves",
                           "the controller sends POST /tls/reload after each renewal: see the proxy's log" if stale else ""))
    wrong = []
    for link in sorted(links, key=lambda o: o["metadata"]["name"]):
        fp = (link["metadata"].get("annotations") or {}).get(TRUST_ANCHOR_ANNOTATION)
        if fp not in trusted:
            wrong.append(f"{link['metadata']['name']}: trusts {fp[:16] if fp else 'no anchor'}")
    out.append(CheckResult("links", "every link trusts the federation's trust anchor", not wrong,
                           "; ".join(wrong) or f"{len(links)} links",
                           "re-create the link: `meshtui link --from A --to B` (its credentials name the current "
                           "anchor)" if wrong else ""))
    return out


def link_checks(links: list[dict[str, Any]]) -> list[CheckResult]:
    """From each Link's status (the probes of its target's gateway)."""
    dead, unprobed = [], []
    for link in sorted(links, key=lambda o: o["metadata"]["name"]):
        st = link.get("status") or {}
        name, target = link["metadata"]["name"], link["spec"]["targetCluster"]
        if st.get("alive") is None:
            unprobed.append(name)
        elif not st["alive"]:
            dead.append(f"{name}: gateway of {target} is dead after {st.get('consecutiveFailures')} failed probes "
                        f"({st.get('lastError')})")
    return [
        CheckResult("links", "every linked gateway is alive", not dead and not unprobed,
                    "; ".join(dead + [f"{n}: not probed yet" for n in unprobed]) or f"{len(links)} linked gateways alive",
                    "is the target cluster's proxy running? `meshtui get clusters`; the link's probe spec: "
                    "`meshtui get link NAME -o yaml`" if dead or unprobed else "",
                    warning=not dead and bool(unprobed)),  # a new link: its first probe is on its way
    ]


def import_checks(imports: dict[tuple[str, str, str], dict], by_key: dict[str, str], alive: dict[str, bool]
                  ) -> list[CheckResult]:
    """Every ServiceImport has an endpoint behind a gateway that answers its probes. `by_key`:
    clusterKey -> cluster; `alive`: the probes' verdict per cluster (unprobed clusters count as alive)."""
    dead = []
    for (cluster, ns, name), imp in sorted(imports.items()):
        exporters = {by_key.get(ep["clusterKey"], ep["clusterKey"]) for p in imp["spec"]["ports"] for ep in p["endpoints"]}
        if exporters and not any(alive.get(c, True) for c in exporters):
            dead.append(f"{cluster}/{ns}/{name}: every exporter's gateway is dead ({', '.join(sorted(exporters))})")
    return [CheckResult("links", "every import has an endpoint behind a live gateway", not dead,
                        "; ".join(dead) or f"{len(imports)} imports reachable",
                        "see which gateways fail their probes: `meshtui get links`, `meshtui get clusters`" if dead else "")]
