"""The embedded federation's data plane: proxies and sample workloads as processes on this
machine, configured from the resources; gateway probes, golden metrics and tap."""
from .runtime import EmbeddedFederation

__all__ = ["EmbeddedFederation"]
