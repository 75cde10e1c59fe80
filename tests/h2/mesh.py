"""The embedded federation for the protocol tests: DESIGN section 8's three clusters with mTLS,
plus a grpc-echo Workload in each, exported from cluster-1 and cluster-3 and consumed in
cluster-2 under ActiveActive. Helpers to reach a cluster's listeners and wait for routes."""
from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from controller.embedded import EmbeddedController
from controller.federation import EmbeddedFederation
from tests.running import eventually
from tests.running import federation as running_federation

GRPC_AUTHORITY = "grpc-echo.demo:9090"


def grpc_manifests(cluster: str, *, export: bool) -> str:
    docs = [f"""
apiVersion: meshtui.io/v1alpha1
kind: Workload
metadata: {{name: grpc-echo, namespace: demo}}
spec: {{app: grpc-echo, replicas: 1, port: 9090, message: "{cluster}", labels: {{app: grpc-echo}}}}
""", """
apiVersion: v1
kind: Service
metadata: {name: grpc-echo, namespace: demo}
spec:
  selector: {app: grpc-echo}
  ports: [{port: 9090, targetPort: 9090, protocol: TCP, appProtocol: grpc}]
"""]
    if export:
        docs.append(f"""
apiVersion: flomesh.io/v1alpha1
kind: ServiceExport
metadata: {{name: grpc-echo, namespace: demo}}
spec:
  rules: [{{portNumber: 9090, path: /{cluster}/grpc-echo, pathType: Prefix}}]
""")
    return "---".join(docs)


ACTIVE_ACTIVE = """
apiVersion: flomesh.io/v1alpha1
kind: GlobalTrafficPolicy
metadata: {name: grpc-echo, namespace: demo}
spec:
  lbType: ActiveActive
  targets:
    - clusterKey: default/default/default/cluster-1
    - clusterKey: default/default/default/cluster-3
"""


async def _grpc_echo_everywhere(controller: EmbeddedController) -> None:
    for cluster in ("cluster-1", "cluster-2", "cluster-3"):
        await controller.apply(grpc_manifests(cluster, export=cluster != "cluster-2"), cluster=cluster)
    await controller.apply(ACTIVE_ACTIVE, cluster="cluster-2")


def federation(tmp_path: Path) -> AbstractAsyncContextManager[tuple[EmbeddedController, EmbeddedFederation]]:
    """The running federation described above: (controller, runtime)."""
    return running_federation(tmp_path, setup=_grpc_echo_everywhere)


async def synced(controller: EmbeddedController, runtime: EmbeddedFederation) -> None:
    """Until every proxy runs the routes of the latest write."""
    async def check() -> bool:
        return all(h.acked_version == controller.core.store.revision and not h.pending
                   for h in runtime.proxies.values())

    assert await eventually(check, timeout=10.0, every=0.01), "proxies did not get the latest routes"
