"""Which service ports the outbound proxy listens on, and who is behind each (pure; the
controller uses it too, for the Cluster's status).

A port of a route declared `tcp` is opaque: every connection is proxied at L4 to that
service, without detection (Linkerd's opaque ports); two tcp services of a cluster on one
port: the first by name gets it. With `ProxyConfig.port_listeners`, every other service
port gets a listener too, shared by all the services on it: HTTP there is routed by its
Host (proxy/tcp/portroute.py), anything else goes at L4 to the port's service, and is
refused when several services share the port (the bytes do not say which one is meant).
Mirrored names (`svc-cluster`) get none: they would share their service's port. A port
the proxy's own listeners hold is reported, never taken.
"""
from __future__ import annotations

from dataclasses import dataclass

from proxy.config import ProxyConfig, ServiceRoute

OPAQUE = "opaque"  # every connection is L4
DETECT = "detect"  # HTTP/1, HTTP/2 or L4 by the connection's first bytes


@dataclass(frozen=True, slots=True)
class PortPlan:
    port: int
    mode: str  # OPAQUE | DETECT
    routes: tuple[ServiceRoute, ...]  # the cluster's services on this port, by namespace and name

    @property
    def target(self) -> ServiceRoute | None:
        """The service opaque connections go to; None when the port is shared."""
        return self.routes[0] if len(self.routes) == 1 else None

    @property
    def services(self) -> list[str]:
        return [f"{r.name}.{r.namespace}" for r in self.routes]

    def ambiguity(self, cluster: str) -> str:
        return (f"port {self.port} of cluster {cluster} is shared by {', '.join(self.services)}: a connection that "
                f"does not speak HTTP cannot say which one it is for; give the services distinct ports, "
                f"or call them over HTTP (Host routes it)")


def port_plans(config: ProxyConfig, reserved: frozenset[int] = frozenset()
               ) -> tuple[dict[int, PortPlan], dict[int, str]]:
    """(port -> its listener's plan, port -> why a route could not have it). `reserved`:
    ports the proxy's other listeners hold on the same host."""
    routes = sorted((r for r in config.routes if r.policy != "Mirror"), key=lambda r: (r.namespace, r.name, r.port))
    opaque: dict[int, ServiceRoute] = {}
    shared: dict[int, list[ServiceRoute]] = {}
    errors: dict[int, list[str]] = {}
    for route in routes:
        if route.protocol == "tcp":
            taken = opaque.get(route.port)
            if taken is None:
                opaque[route.port] = route
            else:
                errors.setdefault(route.port, []).append(
                    f"tcp port {route.port} of {route.name}.{route.namespace} is already the one of "
                    f"{taken.name}.{taken.namespace}: only the latter is served")
        elif config.port_listeners:
            shared.setdefault(route.port, []).append(route)
    plans = {port: PortPlan(port, OPAQUE, (route,)) for port, route in opaque.items()}
    for port, on_port in shared.items():
        if port in opaque:
            tcp = opaque[port]
            errors.setdefault(port, []).append(
                f"port {port} is the tcp port of {tcp.name}.{tcp.namespace}: "
                f"{', '.join(f'{r.name}.{r.namespace}' for r in on_port)} get no listener there "
                f"(call them through the outbound listener)")
            continue
        plans[port] = PortPlan(port, DETECT, tuple(on_port))
    for port in sorted(reserved & plans.keys()):
        plan = plans.pop(port)
        errors.setdefault(port, []).append(f"port {port} of {', '.join(plan.services)} is one of the proxy's own ports")
    return dict(sorted(plans.items())), {port: "; ".join(why) for port, why in sorted(errors.items())}
