"""The resource model: kinds, their aliases, and validation of manifests."""
from .registry import BY_NAME, KINDS, Kind, lookup, resolve_kind
from .kinds import cluster_key

__all__ = ["BY_NAME", "KINDS", "Kind", "lookup", "resolve_kind", "cluster_key"]
