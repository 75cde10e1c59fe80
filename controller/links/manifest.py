"""The Link resource `meshtui link --from A --to B` creates (pure): what cluster A needs to use
cluster B's gateway, as `linkerd multicluster link` prints it.

Credentials: B's gateway address and the fingerprint (SHA-256) of the trust anchor the link
trusts, in the `meshtui.io/trust-anchor-sha256` annotation; `meshtui check` compares it with
the federation's anchor. Probe spec defaults: GET /ready on B's admin port every 3 s, 1 s
timeout, dead after 3 consecutive failures."""
from __future__ import annotations

from typing import Any

from controller.errors import InvalidResource
from controller.reconcile.state import ADMIN_PORT, FederationState

LINK_API_VERSION = "meshtui.io/v1alpha1"
TRUST_ANCHOR_ANNOTATION = "meshtui.io/trust-anchor-sha256"
PROBE_PATH = "/ready"
PROBE_PERIOD_S = 3.0
PROBE_TIMEOUT_S = 1.0
PROBE_FAILURE_THRESHOLD = 3


def link_name(source: str, target: str) -> str:
    return f"{source}-to-{target}"


def _port(address: str | None) -> int | None:
    if not address or ":" not in address:
        return None
    port = address.rpartition(":")[2]
    return int(port) if port.isdigit() else None


def target_addresses(cluster: dict[str, Any]) -> tuple[str, int]:
    """(gateway host:port, admin port) of a Cluster object: where its runtime status says its
    parts listen, else its spec (gatewayHost/gatewayPort, loopback range) and the default port."""
    status = cluster.get("status") or {}
    gateway = (status.get("gateway") or {}).get("address")
    if not gateway:
        name = cluster["metadata"]["name"]
        addr = FederationState.build([cluster]).gateway_address(name)
        if addr is None:
            raise InvalidResource(f"Cluster {name}", "spec.gatewayHost",
                                  "the cluster has no gateway address: set spec.gatewayHost (and gatewayPort)")
        gateway = f"{addr.host}:{addr.port}"
    return gateway, _port((status.get("admin") or {}).get("address")) or ADMIN_PORT


def link_manifest(source: str, target: dict[str, Any], anchor_fingerprint: str, *,
                  period_s: float = PROBE_PERIOD_S, timeout_s: float = PROBE_TIMEOUT_S,
                  failure_threshold: int = PROBE_FAILURE_THRESHOLD, path: str = PROBE_PATH) -> dict[str, Any]:
    """The Link from cluster `source` to the Cluster object `target`."""
    name = target["metadata"]["name"]
    if source == name:
        raise InvalidResource(f"Link {link_name(source, name)}", "spec.targetCluster", "a cluster cannot link to itself")
    gateway, admin_port = target_addresses(target)
    return {
        "apiVersion": LINK_API_VERSION,
        "kind": "Link",
        "metadata": {"name": link_name(source, name), "annotations": {TRUST_ANCHOR_ANNOTATION: anchor_fingerprint}},
        "spec": {
            "sourceCluster": source,
            "targetCluster": name,
            "gatewayAddress": gateway,
            "probe": {"path": path, "port": admin_port, "period": period_s, "timeout": timeout_s,
                      "failureThreshold": failure_threshold},
        },
    }
