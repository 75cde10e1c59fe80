"""`meshtui check` items about the running data plane of the embedded federation."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from controller.checks import certificate_checks, import_checks, link_checks, trust_checks
from controller.errors import NotFound
from controller.interface import CheckResult

from .admin import AdminError

GROUP = "data plane"


async def identity_checks(runtime) -> list[CheckResult]:
    """Certificates on disk, what every running proxy loaded, and the links' credentials."""
    if runtime.identities is None:
        return [CheckResult("identity", "mTLS on every cross-cluster hop", False,
                            "the embedded federation runs without identities (mtls=False)",
                            "run it with mTLS (the default)")]
    errors = [e for e in (runtime.identity_error, runtime.renew_error) if e]
    if errors:
        return [CheckResult("identity", "identities are issued and renewed", False, "; ".join(errors),
                            "see the controller's log; is the state dir writable?")]
    try:
        report = await asyncio.to_thread(runtime.identities.report)
    except NotFound as e:
        return [CheckResult("identity", "a trust anchor exists", False, str(e), "start the federation")]

    async def loaded(cluster: str) -> tuple[str, dict | str]:
        try:
            return cluster, await runtime.proxies[cluster].admin.tls()
        except AdminError as e:
            return cluster, str(e)

    proxies = dict(await asyncio.gather(*(loaded(c) for c, p in sorted(runtime.proxies.items()) if p.proc.ready)))
    return certificate_checks(report, datetime.now(timezone.utc)) + trust_checks(report, proxies, runtime.controller.core.list("Link"))


def gateway_checks(runtime) -> list[CheckResult]:
    """Links and imports as the gateway probes see them."""
    core = runtime.controller.core
    alive = {c: s.alive for c, s in (runtime.prober.states.items() if runtime.prober else ()) if s.checked}
    return link_checks(core.list("Link")) + import_checks(core.imports, core.state.cluster_by_key(), alive)


async def dataplane_checks(runtime) -> list[CheckResult]:
    """`runtime`: an EmbeddedFederation (its proxies, replicas and prober)."""
    proxies = runtime.proxies
    down = sorted(f"{c}: {p.proc.last_error or 'starting'}" for c, p in proxies.items() if not p.proc.ready)
    out = [CheckResult(GROUP, "every embedded cluster's proxy is running", not down,
                       "; ".join(down) or f"{len(proxies)} proxies up",
                       f"see {runtime.state_dir}/proxies/<cluster>/proxy.log" if down else "")]

    async def running(cluster: str) -> tuple[str, int | None, str]:
        try:
            return cluster, await proxies[cluster].admin.config_version(), ""
        except AdminError as e:
            return cluster, None, str(e)

    answers = await asyncio.gather(*(running(c) for c, p in sorted(proxies.items()) if p.proc.ready))
    stale = []
    for cluster, version, error in answers:
        wanted = proxies[cluster].wanted_version
        if error or version != wanted or proxies[cluster].pending:
            stale.append(f"{cluster} runs {version if version is not None else error} (routes are version {wanted})")
    out.append(CheckResult(GROUP, "every proxy is running the current routes", not stale,
                           "; ".join(stale) or f"{len(answers)} proxies current",
                           "wait a moment and check again; if it persists, see the proxy's log" if stale else ""))

    states = runtime.prober.states if runtime.prober else {}
    dead = sorted(f"{c}: {s.error}" for c, s in states.items() if s.checked and not s.alive)
    out.append(CheckResult(GROUP, "every cluster's gateway answers its probes", not dead,
                           "; ".join(dead) or f"{sum(s.checked for s in states.values())} gateways alive",
                           "is the cluster's proxy running? see `meshtui get clusters -o json`" if dead else ""))

    unready = sorted(f"{r.plan.cluster}/{r.plan.namespace}/{r.plan.workload} {r.plan.address}"
                     + (f": {r.proc.last_error}" if r.proc.last_error else "")
                     for r in runtime.replicas.values() if not r.proc.ready)
    out.append(CheckResult(GROUP, "every workload replica is ready", not unready,
                           "; ".join(unready) or f"{len(runtime.replicas)} replicas ready",
                           "see the replica's log under <state>/workloads/" if unready else "", warning=bool(unready)))
    return await identity_checks(runtime) + out + gateway_checks(runtime)
