"""The embedded federation: every Cluster's proxy and every Workload replica as real processes
on this machine, driven by the resource core (the `DataPlane` of controller/embedded.py).

- One proxy per embedded Cluster (outbound, gateway and admin on <loopback>.1), one echo
  process per Workload replica (on the IPs of its `meshtui.io/addresses` annotation).
  Lifetimes, adoption after a controller restart and static stability: see processes.py.
- Routes: after every write (debounced by DEBOUNCE_S) the configuration of each cluster whose
  routes may differ is computed, stripped of replicas that are not ready (readiness.py) and
  PUT to its proxy; each proxy's acknowledged version is kept for `checks()`.
- Identities (identities.py, on by default): every proxy runs with --tls-dir, so every
  cross-cluster hop is mTLS. Leaves are issued before a proxy starts and when a Workload
  brings a new service account, renewed on a timer (`renew_every_s`) well before expiry;
  a proxy whose files changed gets POST /tls/reload. `meshtui identity rotate-anchor` rotates
  the trust anchor from another process under the same lock (controller/identity/rotation.py);
  the renewal tick notices the new anchor for the Clusters' status.
- Gateway probes (probes.py) feed every proxy (PUT /gateways when a verdict changes, and the
  latency of each success), the Cluster's status and each Link's status (links/status.py);
  metrics scraping (controller/metrics) and tap fan-in (tapfanin.py).
- Runtime status: each Cluster's status says where its outbound proxy, gateway and admin port
  listen and whether they are up, where its service ports listen (service_ports.py), the
  gateway's probe verdict and the routes version its proxy runs; each Workload's status has
  replicas / readyReplicas.

Layout of <state>/proxies/<cluster>/: config.json (routes, also rewritten by the proxy on every
PUT), token (admin bearer token, 0600), proxy.pid.json, proxy.log. Replicas:
<state>/workloads/<cluster>/<namespace>/<workload>/<ip>.pid.json and <ip>.log.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import AsyncIterator

import aiohttp

from controller.errors import InvalidResource, MeshError, NotFound
from controller.interface import CheckResult, GoldenRow
from controller.links.status import link_status
from controller.metrics import MetricsScraper
from controller.store.atomic import ensure_private_dir, write_atomic
from proxy.config import ProxyConfig
from proxy.events import TapDropped, TapEvent, TapFilter

from .admin import AdminError, ProxyAdmin
from .checks import dataplane_checks
from .identities import FederationIdentities, Wanted, wanted_identities
from .layout import ProxyPlan, ReplicaPlan, proxy_dir, proxy_plans, replica_plans
from .probes import GatewayProber, ProbeState, ProbeTarget, probe_targets
from .processes import FEDERATION_ENV, ProcessSpec, Supervised, read_record, stop_recorded
from .readiness import without_unready
from .service_ports import service_ports
from .tapfanin import fan_in

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.002
PUSH_RETRY_S = 0.5
START_TIMEOUT_S = 30.0
RENEW_EVERY_S = 10.0  # leaves live 24 h and are renewed after 16 h; the tick also notices a rotated anchor
IDENTITY_RETRY_S = 1.0


@dataclass(eq=False)
class _Proxy:
    plan: ProxyPlan
    proc: Supervised
    admin: ProxyAdmin
    acked_version: int | None = None
    wanted_version: int | None = None
    push_error: str = ""
    last_push_ms: float | None = None  # from the write that changed its routes to the proxy's acknowledgement
    pending: bool = False
    pusher: asyncio.Task | None = None
    tls_error: str = ""  # the last failed POST /tls/reload
    # the service-port listeners of the routes it acknowledged, and why some ports have none
    service_ports: tuple[list[dict], list[str]] = field(default_factory=lambda: ([], []))


@dataclass(eq=False)
class _Replica:
    plan: ReplicaPlan
    proc: Supervised


class EmbeddedFederation:
    def __init__(self, controller, state_dir: Path, *, python: str = sys.executable, mtls: bool = True,
                 leaf_ttl: float | None = None, renew_every_s: float = RENEW_EVERY_S) -> None:
        """`controller`: the EmbeddedController whose resources this runtime serves. `mtls`: the
        proxies run with identities (the default); `leaf_ttl` (seconds, default the authority's
        24 h) and `renew_every_s` (how often leaves due for renewal are looked for)."""
        self.controller = controller
        self.core = controller.core
        self.state_dir = Path(state_dir).resolve()
        self.python = python
        self.identities = FederationIdentities(self.state_dir, self.core.trust_domain, leaf_ttl=leaf_ttl) if mtls else None
        self.renew_every_s = renew_every_s
        self.identity_error = ""  # the last failure to issue the leaves the proxies need
        self.renew_error = ""  # the last failure of the renewal tick
        self.anchor_fingerprint = ""
        self._wanted: Wanted = frozenset()
        self._synced: Wanted = frozenset()
        self._synced_event = asyncio.Event()
        self._identity_task: asyncio.Task | None = None
        self.proxies: dict[str, _Proxy] = {}
        self.replicas: dict[tuple[str, str, str, str], _Replica] = {}
        self.session: aiohttp.ClientSession | None = None
        self.scraper: MetricsScraper | None = None
        self.prober: GatewayProber | None = None
        self._dirty: set[str] = set()
        self._dirty_since: dict[str, float] = {}
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task] = set()
        self._retiring: set[Supervised] = set()  # replaced or removed, being stopped
        self._running = False

    # lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        ensure_private_dir(self.state_dir / "proxies")
        ensure_private_dir(self.state_dir / "workloads")
        self.session = aiohttp.ClientSession()
        self.scraper = MetricsScraper(self.session, self._admins)
        self.prober = GatewayProber(self.session, self._on_probe)
        self._running = True
        self.core.on_change(self._on_change)
        await self._stop_orphans()
        if self.identities is not None:
            self._wanted = wanted_identities(self.core.state, proxy_plans(self.core.state))
            await self._sync_identities()
            self._spawn(self._renewer(), "identity renewal")
        self._sync_processes()
        await asyncio.gather(*(p.proc.wait_ready(START_TIMEOUT_S) for p in self.proxies.values()),
                             *(r.proc.wait_ready(START_TIMEOUT_S) for r in self.replicas.values()))
        self._dirty |= set(self.proxies)
        self._flush()
        await asyncio.gather(*(p.pusher for p in self.proxies.values() if p.pusher), return_exceptions=True)
        self._spawn(self.scraper.run(), "metrics scraper")

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if self.prober is not None:
            self.prober.stop()
        for task in list(self._tasks) + [p.pusher for p in self.proxies.values() if p.pusher] + [self._identity_task]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(p.proc.stop() for p in self.proxies.values()),
                             *(r.proc.stop() for r in self.replicas.values()),
                             *(s.stop() for s in self._retiring), return_exceptions=True)
        self.proxies.clear()
        self.replicas.clear()
        if self.session is not None:
            await self.session.close()

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # processes ----------------------------------------------------------------------------
    def _proxy_dir(self, cluster: str) -> Path:
        return proxy_dir(self.state_dir, cluster)

    def _replica_files(self, plan: ReplicaPlan) -> tuple[Path, Path]:
        d = self.state_dir / "workloads" / plan.cluster / plan.namespace / plan.workload
        return d / f"{plan.ip}.pid.json", d / f"{plan.ip}.log"

    def _token(self, cluster: str) -> str:
        path = self._proxy_dir(cluster) / "token"
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_hex(24)
        write_atomic(path, token.encode())
        return token

    def _env(self) -> dict[str, str]:
        return {FEDERATION_ENV: str(self.state_dir)}

    async def _stop_orphans(self) -> None:
        """Stop recorded processes that the resources no longer call for (deleted while the
        controller was down); those still wanted are adopted by their Supervised."""
        proxies, replicas = proxy_plans(self.core.state), replica_plans(self.core.state)
        wanted = {self._proxy_dir(c) / "proxy.pid.json" for c in proxies}
        wanted |= {self._replica_files(p)[0] for p in replicas.values()}
        records = list((self.state_dir / "proxies").glob("*/proxy.pid.json"))
        records += list((self.state_dir / "workloads").glob("*/*/*/*.pid.json"))
        await asyncio.gather(*(stop_recorded(r) for r in records if r not in wanted and read_record(r) is not None))

    def _sync_processes(self) -> list[Supervised]:
        """Start what the resources call for and is not running; returns what must be stopped
        (after the routes that no longer use it have been pushed)."""
        retire: list[Supervised] = []
        plans = proxy_plans(self.core.state)
        for cluster, handle in list(self.proxies.items()):
            if plans.get(cluster) != handle.plan:
                del self.proxies[cluster]
                if handle.pusher:
                    handle.pusher.cancel()
                retire.append(handle.proc)
        for cluster, plan in plans.items():
            if cluster not in self.proxies:
                self._start_proxy(plan, after=[s for s in retire if s.spec.record == self._proxy_dir(cluster) / "proxy.pid.json"])

        rplans = replica_plans(self.core.state)
        for key, rep in list(self.replicas.items()):
            if rplans.get(key) != rep.plan:
                del self.replicas[key]
                retire.append(rep.proc)
        for key, plan in rplans.items():
            if key not in self.replicas:
                record, _ = self._replica_files(plan)
                self._start_replica(plan, after=[s for s in retire if s.spec.record == record])
        return retire

    def _start_proxy(self, plan: ProxyPlan, after: list[Supervised]) -> None:
        d = self._proxy_dir(plan.cluster)
        ensure_private_dir(d)
        token = self._token(plan.cluster)
        config_file = d / "config.json"
        if not (d / "proxy.pid.json").exists():
            try:
                write_atomic(config_file, json.dumps(self._config(plan.cluster).to_dict()).encode())
            except NotFound:
                pass
        tls_dir = str(self.identities.tls_dir(plan.cluster)) if self.identities is not None else ""
        spec = ProcessSpec(f"proxy {plan.cluster}", plan.argv(str(config_file), token, self.python, tls_dir),
                           d / "proxy.pid.json", d / "proxy.log", _hostport(plan.admin), self._env())
        handle = _Proxy(plan, Supervised(spec, lambda proc, c=plan.cluster: self._proxy_changed(c, proc)),
                        ProxyAdmin(self.session, plan.admin, token))
        self.proxies[plan.cluster] = handle
        self._start_after(handle.proc, after, plan.cluster)
        self._publish_cluster(plan.cluster)

    def _start_replica(self, plan: ReplicaPlan, after: list[Supervised]) -> None:
        record, logfile = self._replica_files(plan)
        spec = ProcessSpec(f"workload {plan.cluster}/{plan.namespace}/{plan.workload} {plan.address}",
                           plan.argv(self.python), record, logfile, (plan.ip, plan.port), self._env())
        rep = _Replica(plan, Supervised(spec, lambda proc, key=plan.key: self._replica_changed(key, proc)))
        self.replicas[plan.key] = rep
        self._start_after(rep.proc, after, "")
        self._publish_workload(plan.cluster, plan.namespace, plan.workload)

    def _start_after(self, proc: Supervised, previous: list[Supervised], cluster: str) -> None:
        """Start `proc` once the process it replaces (same address) has stopped and, for the
        proxy of `cluster`, once the cluster's identities are on disk."""
        if not previous and self._has_identities(cluster):
            proc.start()
            return

        async def later() -> None:
            for old in previous:
                await old.stopped.wait()
            while self._running and not self._has_identities(cluster):
                await self._synced_event.wait()
            if self._running:
                proc.start()

        self._spawn(later(), f"start {proc.spec.name}")

    def _proxy_changed(self, cluster: str, proc: Supervised) -> None:
        handle = self.proxies.get(cluster)
        if handle is None or handle.proc is not proc or not self._running:
            return  # a replaced or removed proxy stopping
        if handle.proc.ready:
            handle.acked_version = None
            self._kick(cluster)
            self._update_probes()
            self._spawn(self._push_all_verdicts(handle), f"gateways {cluster}")
            if handle.proc.adopted and self.identities is not None:  # it ran on while we were away
                self._spawn(self._reload_tls({cluster}), f"tls reload {cluster}")
        self._publish_cluster(cluster)

    def _replica_changed(self, key: tuple[str, str, str, str], proc: Supervised) -> None:
        rep = self.replicas.get(key)
        if not self._running or rep is None or rep.proc is not proc:
            return  # a replaced or removed replica stopping
        self._on_change({rep.plan.cluster})
        self._publish_workload(rep.plan.cluster, rep.plan.namespace, rep.plan.workload)

    # routes -------------------------------------------------------------------------------
    def _on_change(self, clusters: set[str]) -> None:
        """The resource core's listener: called inside a write, so only schedules work."""
        if not self._running:
            return
        now = time.perf_counter()
        for c in clusters:
            self._dirty_since.setdefault(c, now)
        self._dirty |= clusters
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(DEBOUNCE_S, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._running:
            return
        dirty, self._dirty = self._dirty, set()
        if self.identities is not None:
            wanted = wanted_identities(self.core.state, proxy_plans(self.core.state))
            if wanted != self._wanted:
                self._wanted = wanted
                if self._identity_task is None or self._identity_task.done():
                    self._identity_task = asyncio.create_task(self._identity_syncer(), name="identities")
        retire = self._sync_processes()
        for cluster in dirty:
            self._kick(cluster)
        self._update_probes()
        for c in self.core.state.clusters:
            self._publish_cluster(c)
        for (c, ns), workloads in self.core.state.workloads.items():
            if c in dirty:
                for w in workloads:
                    self._publish_workload(c, ns, w["metadata"]["name"])
        if retire:
            self._retiring.update(retire)
            self._spawn(self._retire_after_push(retire), "retire")

    async def _retire_after_push(self, procs: list[Supervised]) -> None:
        pushers = [p.pusher for p in self.proxies.values() if p.pusher and not p.pusher.done()]
        if pushers:
            await asyncio.wait(pushers, timeout=2.0)
        await asyncio.gather(*(p.stop() for p in procs))
        self._retiring.difference_update(procs)

    def _config(self, cluster: str) -> ProxyConfig:
        unready = frozenset(r.plan.address for r in self.replicas.values() if r.plan.cluster == cluster and not r.proc.ready)
        # each proxy has an address of its own: every service port listens there (service_ports.py)
        return replace(without_unready(self.core.proxy_config(cluster), unready), port_listeners=True)

    def _kick(self, cluster: str) -> None:
        handle = self.proxies.get(cluster)
        if handle is None:
            self._dirty_since.pop(cluster, None)
            return
        handle.pending = True
        if handle.pusher is None or handle.pusher.done():
            handle.pusher = asyncio.create_task(self._pusher(handle), name=f"push {cluster}")

    async def _pusher(self, handle: _Proxy) -> None:
        cluster = handle.plan.cluster
        while handle.pending and self._running:
            handle.pending = False
            if not handle.proc.ready:
                return  # pushed when it becomes ready
            since = self._dirty_since.pop(cluster, None)
            try:
                config = self._config(cluster)
            except NotFound:
                return
            handle.wanted_version = config.version
            try:
                handle.acked_version = await handle.admin.put_config(config)
                handle.service_ports = service_ports(handle.plan, config)
                handle.push_error = ""
                if since is not None:
                    handle.last_push_ms = (time.perf_counter() - since) * 1000
            except AdminError as e:
                handle.push_error = str(e)
                log.warning("%s", e)
                if e.status is None:  # no answer: try again while the process runs
                    await asyncio.sleep(PUSH_RETRY_S)
                    handle.pending = True
            self._publish_cluster(cluster)

    # identities ------------------------------------------------------------------------------
    def _has_identities(self, cluster: str) -> bool:
        if self.identities is None or not cluster:
            return True
        return all(w in self._synced for w in self._wanted if w[0] == cluster)

    async def _sync_identities(self) -> set[str]:
        """Issue what `_wanted` calls for; returns the clusters whose files changed. Raises MeshError."""
        assert self.identities is not None
        wanted = self._wanted
        changed = await asyncio.to_thread(self.identities.sync, wanted)
        self.anchor_fingerprint = await asyncio.to_thread(self.identities.anchor_fingerprint)
        self._synced, self.identity_error = wanted, ""
        done, self._synced_event = self._synced_event, asyncio.Event()
        done.set()
        return changed

    async def _identity_syncer(self) -> None:
        while self._running and self._wanted != self._synced:
            try:
                changed = await self._sync_identities()
            except (MeshError, OSError, ValueError) as e:
                self.identity_error = f"cannot issue identities: {e}"
                log.error("%s", self.identity_error)
                await asyncio.sleep(IDENTITY_RETRY_S)
                continue
            await self._reload_tls(changed)

    async def _renewer(self) -> None:
        assert self.identities is not None
        while self._running:
            await asyncio.sleep(self.renew_every_s)
            try:
                changed = await asyncio.to_thread(self.identities.renew)
                anchor = await asyncio.to_thread(self.identities.anchor_fingerprint)
            except (MeshError, OSError, ValueError) as e:
                self.renew_error = f"cannot renew identities: {e}"
                log.error("%s", self.renew_error)
                continue
            self.renew_error = ""
            if anchor != self.anchor_fingerprint:
                self.anchor_fingerprint = anchor
                for cluster in self.proxies:
                    self._publish_cluster(cluster)
            if changed:
                log.info("renewed the leaves of %s", ", ".join(sorted(changed)))
                await self._reload_tls(changed)

    async def _reload_tls(self, clusters: set[str]) -> list[str]:
        """POST /tls/reload to the running proxies of `clusters`; returns the failures (a proxy
        that is not running loads the files when it starts)."""
        handles = [h for c, h in sorted(self.proxies.items()) if c in clusters and h.proc.ready]

        async def one(handle: _Proxy) -> str:
            try:
                await handle.admin.reload_tls()
                handle.tls_error = ""
            except AdminError as e:
                handle.tls_error = str(e)
                log.warning("%s", e)
            self._publish_cluster(handle.plan.cluster)
            return handle.tls_error

        return [e for e in await asyncio.gather(*(one(h) for h in handles)) if e]

    # gateway probes ------------------------------------------------------------------------
    def _update_probes(self) -> None:
        """Probe every gateway, an embedded one from the first time its proxy was up."""
        plans = {c: p.plan for c, p in self.proxies.items()}
        starting = {c for c, p in self.proxies.items() if not p.proc.ever_ready}
        targets = probe_targets(self.core.state, plans)
        if self.prober is not None:
            self.prober.update({c: t for c, t in targets.items() if c not in starting})

    @staticmethod
    def _verdict(target: ProbeTarget, st: ProbeState) -> dict:
        return {"alive": st.alive, "cluster": target.cluster, "latency_ms": st.latency_ms}

    def _on_probe(self, target: ProbeTarget, st: ProbeState, changed: bool) -> None:
        """Every proxy hears of a changed verdict, and of each success (its latency feeds the
        gateway_probe_latency_ms metric); a failure that changes nothing yet is not sent, so
        the proxies' passive marks of a gateway that refuses connections stay in force."""
        if not self._running:
            return
        if changed or st.failures == 0:
            verdict = {target.gateway: self._verdict(target, st)}
            for handle in self.proxies.values():
                if handle.proc.ready:
                    self._spawn(self._put_gateways(handle, verdict), f"gateway verdict {handle.plan.cluster}")
        self._publish_cluster(target.cluster)
        now = time.monotonic()
        for name, link in self.core.state.links.items():
            if link["spec"]["targetCluster"] == target.cluster:
                status = link_status(st, now, self.core.state, self.core.imports, link["spec"]["sourceCluster"],
                                     target.cluster)
                self.core.set_status(("Link", "", "", name), status)

    async def _push_all_verdicts(self, handle: _Proxy) -> None:
        if self.prober is None:
            return
        verdicts = {t.gateway: self._verdict(t, self.prober.states[c]) for c, t in self.prober.targets.items()
                    if c in self.prober.states and self.prober.states[c].checked}
        if verdicts:
            await self._put_gateways(handle, verdicts)

    @staticmethod
    async def _put_gateways(handle: _Proxy, verdicts: dict) -> None:
        try:
            await handle.admin.put_gateways(verdicts)
        except AdminError as e:
            log.debug("%s", e)

    # status -------------------------------------------------------------------------------
    def _publish_cluster(self, cluster: str) -> None:
        if cluster not in self.core.state.clusters:
            return
        handle = self.proxies.get(cluster)
        if handle is None:
            return
        up = handle.proc.ready
        probe = self.prober.states.get(cluster) if self.prober else None
        gateway: dict = {"address": handle.plan.gateway, "up": up}
        if probe is not None and probe.checked:
            gateway["alive"] = probe.alive
            gateway["probeLatencyMs"] = None if probe.latency_ms is None else round(probe.latency_ms, 1)
            if probe.failures:
                gateway["probeError"] = probe.error
        if handle.plan.note:
            gateway["note"] = handle.plan.note
        proxy: dict = {"pid": handle.proc.pid, "restarts": handle.proc.restarts, "routesVersion": handle.wanted_version,
                       "configVersion": handle.acked_version}
        if handle.proc.last_error:
            proxy["error"] = handle.proc.last_error
        if handle.push_error:
            proxy["pushError"] = handle.push_error
        if handle.tls_error:
            proxy["tlsError"] = handle.tls_error
        ports, port_errors = handle.service_ports
        self.core.set_status(("Cluster", "", "", cluster), {
            "outbound": {"address": handle.plan.outbound, "up": up},
            "servicePorts": ports,
            **({"servicePortErrors": port_errors} if port_errors else {}),
            "gateway": gateway,
            "admin": {"address": handle.plan.admin, "up": up},
            "proxy": proxy,
            "identity": {"mtls": self.identities is not None, "trustAnchor": self.anchor_fingerprint or None},
        })

    def _publish_workload(self, cluster: str, namespace: str, name: str) -> None:
        reps = [r for r in self.replicas.values() if r.plan.key[:3] == (cluster, namespace, name)]
        if not any(o["metadata"]["name"] == name for o in self.core.state.workloads.get((cluster, namespace), ())):
            return
        status: dict = {"replicas": len(reps), "readyReplicas": sum(r.proc.ready for r in reps),
                        "addresses": sorted(r.plan.address for r in reps)}
        errors = sorted(f"{r.plan.address}: {r.proc.last_error}" for r in reps if r.proc.last_error and not r.proc.ready)
        if errors:
            status["errors"] = errors
        self.core.set_status(("Workload", cluster, namespace, name), status)

    # DataPlane ----------------------------------------------------------------------------
    def _admins(self) -> dict[str, str]:
        return {c: p.plan.admin for c, p in self.proxies.items() if p.proc.ready}

    def tap(self, flt: TapFilter) -> AsyncIterator[TapEvent | TapDropped]:
        assert self.session is not None, "start() the federation first"
        return fan_in(self.session, self._admins, flt)

    async def golden(self, window: str) -> list[GoldenRow]:
        try:
            return self.scraper.golden(window) if self.scraper else []
        except ValueError as e:
            raise InvalidResource("golden metrics", "window", str(e)) from None

    async def checks(self) -> list[CheckResult]:
        return await dataplane_checks(self)


def _hostport(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)
