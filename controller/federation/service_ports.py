"""Where a cluster's outbound proxy listens for its services' ports, as the Cluster's status
shows it (`status.servicePorts`), from the routes the proxy was sent (pure).

The embedded federation gives each cluster's proxy an address of its own (<loopback>.1), so
it turns `ProxyConfig.port_listeners` on: every service port of the cluster is a listener
there, as a ClusterIP:port is (proxy/tcp/ports.py). A port the proxy cannot bind (held by
another process) is in its log, not here.
"""
from __future__ import annotations

from proxy.config import ProxyConfig
from proxy.tcp.ports import port_plans

from .layout import ProxyPlan


def service_ports(plan: ProxyPlan, config: ProxyConfig) -> tuple[list[dict], list[str]]:
    """(one entry per listener: address, mode, services; why some service ports have none)."""
    host = plan.outbound.rpartition(":")[0]
    reserved = frozenset(int(port) for h, _, port in (a.rpartition(":") for a in (plan.outbound, plan.gateway, plan.admin))
                         if h == host)
    plans, errors = port_plans(config, reserved)
    return ([{"address": f"{host}:{port}", "mode": p.mode, "services": p.services} for port, p in plans.items()],
            list(errors.values()))
