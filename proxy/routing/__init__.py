"""Routing decisions of the data plane: names, endpoint health, balancers, route table."""
from proxy.routing.health import EndpointHealth
from proxy.routing.names import parse_authority
from proxy.routing.table import RouteTable

__all__ = ["EndpointHealth", "RouteTable", "parse_authority"]
