"""Endpoints of replicas that are not ready are left out of the routes pushed to the proxies,
as Kubernetes leaves unready pods out of a Service's endpoints (pure)."""
from __future__ import annotations

from dataclasses import replace

from proxy.config import BackendGroup, GatewayRule, ProxyConfig, ServiceRoute


def _route(route: ServiceRoute, unready: frozenset[str]) -> ServiceRoute:
    tiers = tuple(
        tuple(
            BackendGroup(g.cluster, g.weight, eps)
            for g in tier
            if (eps := tuple(e for e in g.endpoints if e.gateway or e.address not in unready))
        )
        for tier in route.tiers
    )
    return route if tiers == route.tiers else replace(route, tiers=tiers)


def _rule(rule: GatewayRule, unready: frozenset[str]) -> GatewayRule:
    eps = tuple(e for e in rule.endpoints if e.address not in unready)
    return rule if eps == rule.endpoints else replace(rule, endpoints=eps)


def without_unready(config: ProxyConfig, unready: frozenset[str]) -> ProxyConfig:
    """`unready`: addresses (ip:port) of this cluster's replicas that are not serving."""
    if not unready:
        return config
    return replace(config, routes=tuple(_route(r, unready) for r in config.routes),
                   gateway=tuple(_rule(g, unready) for g in config.gateway))
