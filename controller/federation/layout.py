"""What the embedded federation should be running, derived from the resources (pure).

An embedded Cluster (no kubeconfig/context) owns the loopback /24 of its
`meshtui.io/loopback` annotation: its proxy listens on <loopback>.1 (outbound
4140, gateway 4143 unless the Cluster names another loopback gateway address,
admin 4191); each Workload replica listens on one IP of the Workload's
`meshtui.io/addresses` annotation, on spec.port."""
from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from controller.reconcile.state import (ADDRESSES_ANNOTATION, ADMIN_PORT, GATEWAY_PORT, LOOPBACK_ANNOTATION,
                                        OUTBOUND_PORT, FederationState)


def proxy_dir(state_dir: Path, cluster: str) -> Path:
    """<state>/proxies/<cluster>/: config.json, token (the admin bearer token), pid record, log."""
    return Path(state_dir) / "proxies" / cluster


@dataclass(frozen=True, slots=True)
class ProxyPlan:
    cluster: str
    outbound: str  # host:port
    gateway: str
    admin: str
    note: str = ""  # set when the Cluster's gatewayHost cannot be served on this machine

    def argv(self, config_file: str, token: str, python: str = sys.executable, tls_dir: str = "") -> tuple[str, ...]:
        """`tls_dir`: the cluster's leaves (mTLS on every cross-cluster hop); empty = plain."""
        return (python, "-m", "proxy", "--cluster", self.cluster, "--outbound", self.outbound,
                "--gateway", self.gateway, "--admin", self.admin, "--config-file", config_file,
                f"--admin-token={token}", *((f"--tls-dir={tls_dir}",) if tls_dir else ()))


@dataclass(frozen=True, slots=True)
class ReplicaPlan:
    cluster: str
    namespace: str
    workload: str
    ip: str
    port: int
    app: str
    message: str
    error_rate: float
    latency_ms: int

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.cluster, self.namespace, self.workload, self.ip)

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def argv(self, python: str = sys.executable) -> tuple[str, ...]:
        argv = [python, "-m", f"proxy.samples.{self.app.replace('-', '_')}", "--listen", self.address, "--cluster", self.cluster,
                "--error-rate", repr(self.error_rate), "--latency-ms", str(self.latency_ms)]
        if self.message:
            argv.append(f"--message={self.message}")
        return tuple(argv)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def embedded(state: FederationState, cluster: str) -> bool:
    obj = state.clusters.get(cluster)
    if obj is None:
        return False
    spec = obj.get("spec") or {}
    return not spec.get("kubeconfig") and not spec.get("context") and bool(
        obj["metadata"].get("annotations", {}).get(LOOPBACK_ANNOTATION))


def proxy_plans(state: FederationState) -> dict[str, ProxyPlan]:
    plans: dict[str, ProxyPlan] = {}
    for name, obj in state.clusters.items():
        if not embedded(state, name):
            continue
        host = f"{obj['metadata']['annotations'][LOOPBACK_ANNOTATION]}.1"
        gateway, note = f"{host}:{GATEWAY_PORT}", ""
        gw = state.gateway_address(name)
        if gw is not None and gw.host != host:
            if _is_loopback(gw.ip):
                gateway = f"{gw.ip}:{gw.port}"
            else:
                note = (f"spec.gatewayHost {gw.host} is not a loopback address: the embedded gateway listens on "
                        f"{gateway}, and other clusters' imports point at {gw.host}:{gw.port}")
        elif gw is not None:
            gateway = f"{host}:{gw.port}"
        plans[name] = ProxyPlan(name, f"{host}:{OUTBOUND_PORT}", gateway, f"{host}:{ADMIN_PORT}", note)
    return plans


def replica_plans(state: FederationState) -> dict[tuple[str, str, str, str], ReplicaPlan]:
    plans: dict[tuple[str, str, str, str], ReplicaPlan] = {}
    for (cluster, namespace), workloads in state.workloads.items():
        if not embedded(state, cluster):
            continue
        for w in workloads:
            spec = w["spec"]
            addresses = w["metadata"].get("annotations", {}).get(ADDRESSES_ANNOTATION, "")
            for ip in filter(None, addresses.split(",")):
                plan = ReplicaPlan(cluster, namespace, w["metadata"]["name"], ip, spec["port"], spec.get("app", "echo"),
                                   spec.get("message", ""), float(spec.get("errorRate", 0.0)), int(spec.get("latencyMs", 0)))
                plans[plan.key] = plan
    return plans
