"""A small Kubernetes API server on loopback that the official `kubernetes` client talks to."""

from tests.kubeapi.server import KubeAPIServer, merged_kubeconfig

__all__ = ["KubeAPIServer", "merged_kubeconfig"]
