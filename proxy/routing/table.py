"""The route table of one proxy: which endpoint serves a request, or why none can.

Built once per `ProxyConfig` (validating it); everything a request needs is
precomputed here, so `resolve` and `choose` do lookups and a few comparisons.
The balancer cursors and smooth-WRR credits live in the table, so they restart
when the configuration changes; endpoint health lives in `EndpointHealth` and
survives it.
"""
from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Final

from proxy.config import BALANCERS, Endpoint, GatewayRule, ProxyConfig, ServiceRoute
from proxy.routing.balancers import (
    NO_KEY,
    Balancer,
    key_hash,
    make_balancer,
    seed_of,
    smooth_wrr,
    weighted_rendezvous,
)
from proxy.routing.health import EndpointHealth, EndpointState
from proxy.routing.names import parse_authority

_RESOLVE_CACHE_MAX: Final = 4096
_MISS: Final = object()


class _Group:
    """One cluster of one tier: picked by weight, then an endpoint by the balancer."""

    def __init__(self, cluster: str, weight: int, balancer: Balancer) -> None:
        self.cluster = cluster
        self.weight = weight
        self.current = 0
        self.seed = seed_of(cluster)
        self.balancer = balancer
        self.usable = balancer.any_available  # one call less on the hot path


class _Plan:
    def __init__(self, route: ServiceRoute, tiers: tuple[tuple[_Group, ...], ...]) -> None:
        self.route = route
        self.label = f"{route.name}.{route.namespace}:{route.port}"
        self.tiers = tiers
        self.hashing = route.balancer == "hashing"
        self.split: tuple[_SplitBackend, ...] = ()
        # the balancer of the only group of the only tier (the common route), for the fast path
        only = tiers[0][0] if len(tiers) == 1 and len(tiers[0]) == 1 else None
        self.single = only.balancer if only is not None and only.weight > 0 else None

    def usable(self, now: float, exclude: frozenset[str]) -> bool:
        return any(g.weight > 0 and g.usable(now, exclude) for tier in self.tiers for g in tier)


class _SplitBackend:
    def __init__(self, service: str, weight: int, plan: _Plan | None, missing: str) -> None:
        self.service = service
        self.weight = weight
        self.current = 0
        self.seed = seed_of(service)
        self.plan = plan  # the backend's own route (its tiers; a nested split is not followed)
        self.missing = missing  # why plan is None

    def usable(self, now: float, exclude: frozenset[str]) -> bool:
        return self.plan is not None and self.plan.usable(now, exclude)


class _RulePlan:
    def __init__(self, rule: GatewayRule, balancer: Balancer) -> None:
        self.label = f"{rule.service}.{rule.namespace}:{rule.port}"
        self.balancer = balancer


class RouteTable:
    def __init__(self, config: ProxyConfig, health: EndpointHealth, *, rng: random.Random | None = None) -> None:
        """Raises ValueError naming the route or rule and the field when `config` is invalid."""
        self.config = config
        self.health = health
        self._rng = rng if rng is not None else random.Random()
        self._clock = health.clock
        _validate(config)
        health.track(_endpoint_sets(config))

        self._by_key: dict[tuple[str, str, int], ServiceRoute] = {}
        self._ports: dict[tuple[str, str], list[ServiceRoute]] = {}
        self._plans: dict[int, _Plan] = {}
        plans_by_key: dict[tuple[str, str, int], _Plan] = {}
        for route in config.routes:
            key = (route.namespace.lower(), route.name.lower(), route.port)
            self._by_key[key] = route
            self._ports.setdefault(key[:2], []).append(route)
            plan = _Plan(route, tuple(tuple(self._group(route, g) for g in tier) for tier in route.tiers))
            self._plans[id(route)] = plans_by_key[key] = plan
        for plan in self._plans.values():
            if plan.route.split:
                plan.split = tuple(self._split_backend(plan, b.service, b.weight, plans_by_key)
                                   for b in plan.route.split)
        self._plans_by_key = plans_by_key
        self._resolved: dict[str, ServiceRoute | None] = {}

        self._rules: dict[int, _RulePlan] = {}
        self._exact: dict[str, GatewayRule] = {}
        self._prefix: dict[str, GatewayRule] = {}
        for rule in config.gateway:
            states = tuple(health.state(ep) for ep in rule.endpoints)
            self._rules[id(rule)] = _RulePlan(rule, make_balancer(rule.balancer, states, health, self._rng))
            if rule.path_type == "Exact":
                self._exact[rule.path] = rule
            else:
                self._prefix[_prefix_key(rule.path)] = rule

    # -- outbound ------------------------------------------------------------------

    def resolve(self, authority: str) -> ServiceRoute | None:
        """The route an authority names; without a port, the route on port 80, else the
        service's only port."""
        route = self._resolved.get(authority, _MISS)
        if route is not _MISS:
            return route  # type: ignore[return-value]
        route = None
        parsed = parse_authority(authority)
        if parsed is not None:
            namespace, name, port = parsed
            if port is not None:
                route = self._by_key.get((namespace, name, port))
            else:
                route = self._by_key.get((namespace, name, 80))
                if route is None:
                    ports = self._ports.get((namespace, name), ())
                    route = ports[0] if len(ports) == 1 else None
        if len(self._resolved) >= _RESOLVE_CACHE_MAX:
            self._resolved.clear()
        self._resolved[authority] = route
        return route

    def choose(
        self, route: ServiceRoute, *, hash_key: bytes = b"", exclude: frozenset[str] = frozenset()
    ) -> Endpoint | str:
        """An endpoint for one request to `route`, or the reason (503 body) there is none.
        `exclude`: addresses already tried by this request."""
        plan = self._plans.get(id(route)) or self._plan_of(route)
        now = self._clock()
        h = key_hash(hash_key) if plan.hashing else NO_KEY
        single = plan.single
        if single is not None and not plan.split:
            st = single.pick(now, h, exclude)
            if st is not None:
                return st.endpoint
            return route.unroutable or self._reason(plan, now, exclude)
        if plan.split:
            backend = (
                smooth_wrr(plan.split, now, exclude)
                if h == NO_KEY
                else weighted_rendezvous(plan.split, h, now, exclude)
            )
            if backend is not None and backend.plan is not None:
                st = self._choose_tiers(backend.plan, now, h, exclude)
                if st is not None:
                    return st.endpoint
            return route.unroutable or self._split_reason(plan, now, exclude)
        st = self._choose_tiers(plan, now, h, exclude)
        if st is not None:
            return st.endpoint
        return route.unroutable or self._reason(plan, now, exclude)

    # -- gateway -------------------------------------------------------------------

    def gateway_rule(self, path: str) -> tuple[GatewayRule, str] | None:
        """The longest rule matching `path` (Exact before Prefix at equal length; Prefix
        element-wise) and the path with the rule's path stripped ("" -> "/")."""
        p, sep, query = path.partition("?")
        suffix = sep + query
        rule = self._exact.get(p)
        if rule is not None:
            return rule, "/" + suffix
        i = len(p)
        while i >= 0:
            rule = self._prefix.get(p[:i])
            if rule is not None:
                return rule, (p[i:] or "/") + suffix
            i = p.rfind("/", 0, i)
        return None

    def choose_local(
        self, rule: GatewayRule, *, hash_key: bytes = b"", exclude: frozenset[str] = frozenset()
    ) -> Endpoint | str:
        plan = self._rules.get(id(rule))
        if plan is None:
            states = tuple(self.health.state(ep) for ep in rule.endpoints)
            plan = _RulePlan(rule, make_balancer(rule.balancer, states, self.health, self._rng))
        now = self._clock()
        st = plan.balancer.pick(now, key_hash(hash_key) if rule.balancer == "hashing" else NO_KEY, exclude)
        if st is not None:
            return st.endpoint
        where = f"{plan.label} in cluster {self.config.cluster}"
        if not rule.endpoints:
            return f"no local endpoints for {where}"
        return f"no available local endpoints for {where} ({self._describe(plan.balancer.states, now, exclude)})"

    # -- building ------------------------------------------------------------------

    def _group(self, route: ServiceRoute, group) -> _Group:
        states = tuple(self.health.state(ep) for ep in group.endpoints)
        return _Group(group.cluster, group.weight, make_balancer(route.balancer, states, self.health, self._rng))

    def _split_backend(
        self, root: _Plan, service: str, weight: int, plans: dict[tuple[str, str, int], _Plan]
    ) -> _SplitBackend:
        route = root.route
        namespace, name = route.namespace.lower(), service.lower()
        if name == route.name.lower():
            return _SplitBackend(service, weight, root, "")
        plan = plans.get((namespace, name, route.port))
        if plan is None:
            ports = self._ports.get((namespace, name), ())
            plan = plans[(namespace, name, ports[0].port)] if len(ports) == 1 else None
        missing = "" if plan is not None else f"no route for {service}.{route.namespace}:{route.port}"
        return _SplitBackend(service, weight, plan, missing)

    def _plan_of(self, route: ServiceRoute) -> _Plan:
        """A route object this table did not build: use the table's route of the same key,
        else plan it now (not kept)."""
        plan = self._plans_by_key.get((route.namespace.lower(), route.name.lower(), route.port))
        if plan is not None:
            return plan
        plan = _Plan(route, tuple(tuple(self._group(route, g) for g in tier) for tier in route.tiers))
        if route.split:
            plan.split = tuple(self._split_backend(plan, b.service, b.weight, self._plans_by_key)
                               for b in route.split)
        return plan

    # -- choosing ------------------------------------------------------------------

    def _choose_tiers(self, plan: _Plan, now: float, h: int, exclude: frozenset[str]) -> EndpointState | None:
        for tier in plan.tiers:
            if len(tier) == 1:
                group = tier[0]
                if group.weight > 0:
                    st = group.balancer.pick(now, h, exclude)
                    if st is not None:
                        return st
                continue
            chosen = smooth_wrr(tier, now, exclude) if h == NO_KEY else weighted_rendezvous(tier, h, now, exclude)
            if chosen is not None:
                return chosen.balancer.pick(now, h, exclude)
        return None

    # -- reasons (only when nothing is available) -----------------------------------

    def _reason(self, plan: _Plan, now: float, exclude: frozenset[str]) -> str:
        route = plan.route
        local_cluster = self.config.cluster
        local: list[EndpointState] = []
        targets: list[EndpointState] = []
        for tier in plan.tiers:
            for group in tier:
                (local if group.cluster == local_cluster else targets).extend(group.balancer.states)
        has_targets = any(group.cluster != local_cluster for tier in plan.tiers for group in tier)
        if route.policy == "Locality" and not has_targets:
            if not local:
                return f"no local endpoints for {plan.label} under policy Locality"
            return (
                f"no available local endpoints for {plan.label} under policy Locality "
                f"({self._describe(local, now, exclude)})"
            )
        return (
            f"no available endpoints for {plan.label} under policy {route.policy} "
            f"(local: {self._describe(local, now, exclude)}, targets: {self._describe(targets, now, exclude)})"
        )

    def _split_reason(self, plan: _Plan, now: float, exclude: frozenset[str]) -> str:
        parts = []
        for b in plan.split:
            if b.plan is None:
                parts.append(f"{b.service}: {b.missing}")
            elif b.weight <= 0:
                parts.append(f"{b.service}: weight 0")
            else:
                states = [st for tier in b.plan.tiers for g in tier for st in g.balancer.states]
                parts.append(f"{b.service}: {self._describe(states, now, exclude)}")
        return f"no available backends for {plan.label} under TrafficSplit ({', '.join(parts)})"

    def _describe(self, states: list[EndpointState] | tuple[EndpointState, ...], now: float,
                  exclude: frozenset[str]) -> str:
        if not states:
            return "0 available"
        ejected = sum(1 for st in states if st.ejected_until > now)
        tried = sum(1 for st in states if st.address in exclude)
        dead = sum(1 for st in states if st.ejected_until <= now and not self.health.state_available(st, now))
        causes = [
            f"{n} {what}"
            for n, what in ((ejected, "ejected"), (dead, "behind a dead gateway"), (tried, "already tried"))
            if n
        ]
        return f"0 available of {len(states)} ({' and '.join(causes)})"


def _prefix_key(path: str) -> str:
    return path.rstrip("/")


def _endpoint_sets(config: ProxyConfig) -> Iterable[tuple[Endpoint, ...]]:
    for route in config.routes:
        for tier in route.tiers:
            for group in tier:
                yield group.endpoints
    for rule in config.gateway:
        yield rule.endpoints


def _validate(config: ProxyConfig) -> None:
    seen: set[tuple[str, str, int]] = set()
    for route in config.routes:
        label = f"route {route.name}.{route.namespace}:{route.port}"
        key = (route.namespace.lower(), route.name.lower(), route.port)
        if key in seen:
            raise ValueError(f"{label}: duplicate route (namespace, name, port)")
        seen.add(key)
        if not 0 < route.port < 65536:
            raise ValueError(f"{label}: port must be within 1..65535")
        if route.balancer not in BALANCERS:
            raise ValueError(f"{label}: unknown balancer {route.balancer!r} (expected one of {', '.join(BALANCERS)})")
        for tier in route.tiers:
            for group in tier:
                if group.weight < 0:
                    raise ValueError(f"{label}: negative weight {group.weight} for cluster {group.cluster}")
        for backend in route.split:
            if backend.weight < 0:
                raise ValueError(f"{label}: negative weight {backend.weight} for split backend {backend.service}")
    rules: set[tuple[str, str]] = set()
    for rule in config.gateway:
        label = f"gateway rule {rule.path!r} ({rule.service}.{rule.namespace}:{rule.port})"
        if not rule.path.startswith("/"):
            raise ValueError(f"{label}: path must start with '/'")
        if rule.path_type not in ("Prefix", "Exact"):
            raise ValueError(f"{label}: unknown path_type {rule.path_type!r} (expected Prefix or Exact)")
        if rule.balancer not in BALANCERS:
            raise ValueError(f"{label}: unknown balancer {rule.balancer!r} (expected one of {', '.join(BALANCERS)})")
        path_key = (rule.path_type, rule.path if rule.path_type == "Exact" else _prefix_key(rule.path))
        if path_key in rules:
            raise ValueError(f"{label}: duplicate {rule.path_type} path")
        rules.add(path_key)
