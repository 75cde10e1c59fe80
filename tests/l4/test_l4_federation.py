"""Protocol detection across the embedded federation (mTLS between clusters): a server joined
to cluster-1 as a Service with an `http` port (selector-less Service + Endpoints), exported,
and called from cluster-2 on that port of cluster-2's proxy address, as a ClusterIP:port.
Bytes that are not HTTP cross to cluster-1's gateway as an opaque mTLS stream; HTTP on the
same listener is routed at L7. The Clusters' status says where the service ports listen."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.h2.mesh import federation, synced
from tests.l4.support import dual_backend, echo_through, metric
from tests.running import address

pytestmark = pytest.mark.timeout(90)
PORT = 7100


def store(backend_port: int) -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: store, namespace: demo}}
spec:
  ports: [{{port: {PORT}, protocol: TCP, appProtocol: http}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: store, namespace: demo}}
subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{{port: {backend_port}}}]}}]
---
apiVersion: flomesh.io/v1alpha1
kind: ServiceExport
metadata: {{name: store, namespace: demo}}
spec:
  rules: [{{portNumber: {PORT}, path: /cluster-1/store, pathType: Prefix}}]
"""


CONSUME = """
apiVersion: flomesh.io/v1alpha1
kind: GlobalTrafficPolicy
metadata: {name: store, namespace: demo}
spec:
  lbType: ActiveActive
  targets: [{clusterKey: default/default/default/cluster-1}]
"""


async def test_non_http_bytes_on_an_http_port_cross_clusters_at_l4(tmp_path):
    async with dual_backend("store-1") as backend, federation(tmp_path) as (controller, runtime):
        await controller.apply(store(backend), cluster="cluster-1")
        await controller.apply(CONSUME, cluster="cluster-2")
        await synced(controller, runtime)
        host = address(controller, "cluster-2", "outbound").rpartition(":")[0]
        clusters = {c["metadata"]["name"]: c["status"] for c in await controller.list("Cluster")}

        payload = b"\x00\x01 not http \xff" * 5000
        for _ in range(100):  # the listener opens once the proxy has the routes
            try:
                echoed = await echo_through(host, PORT, payload, half_close=False)  # TLS cannot pass a half-close
                break
            except OSError:
                await asyncio.sleep(0.05)
        # a half-close crosses the mTLS hop (framed): the server sees EOF, answers, and all closes
        after_eof = await echo_through(host, PORT, b"then EOF", half_close=True)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{host}:{PORT}/over/l7") as r:  # Host <ip>:7100: the port's service
                reply = (r.status, await r.text())
            metrics: dict[str, str] = {}
            for _ in range(100):  # a connection's bytes are counted when it closes, on both sides
                for cluster in ("cluster-1", "cluster-2"):
                    async with http.get(f"http://{address(controller, cluster, 'admin')}/metrics") as r:
                        metrics[cluster] = await r.text()
                if all(metric(text, "tcp_open_connections") == 0 for text in metrics.values()):
                    break
                await asyncio.sleep(0.05)

    assert {"address": f"{host}:{PORT}", "mode": "detect", "services": ["store.demo"]} in clusters["cluster-2"]["servicePorts"]
    grpc_port = {"address": f"{host}:9090", "mode": "detect", "services": ["grpc-echo.demo"]}
    assert grpc_port in clusters["cluster-2"]["servicePorts"]
    assert echoed == payload and after_eof == b"then EOF"
    assert reply == (200, "store-1 http /over/l7")
    outbound = dict(direction="outbound", dst_service="store", dst_cluster="cluster-1", tls="true")
    assert metric(metrics["cluster-2"], "tcp_open_total", **outbound) == 2
    assert metric(metrics["cluster-2"], "tcp_open_connections", **outbound) == 0
    assert metric(metrics["cluster-2"], "tcp_read_bytes_total", **outbound) == len(payload) + len(b"then EOF")
    assert metric(metrics["cluster-2"], "request_total", direction="outbound", dst_service="store", tls="true") == 1
    gateway = dict(direction="gateway", src_cluster="cluster-2", dst_service="store", tls="true")
    assert metric(metrics["cluster-1"], "tcp_open_total", **gateway) == 2
    assert metric(metrics["cluster-1"], "tcp_open_connections", **gateway) == 0
