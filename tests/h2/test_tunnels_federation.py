"""WebSocket and opaque TCP across the embedded federation (mTLS between clusters): endpoints
are servers of this test, joined to cluster-1 and cluster-3 by Endpoints resources."""
from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import aiohttp
import pytest
from aiohttp import web

from tests.h2.mesh import federation, synced
from tests.l4.support import greeting_backend
from tests.running import address

pytestmark = pytest.mark.timeout(90)
TCP_PORT = 7000


def backend(cluster: str, name: str, port: int, app_protocol: str, target_port: int, *, export: bool) -> str:
    docs = f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: demo}}
spec:
  ports: [{{port: {port}, protocol: TCP, appProtocol: {app_protocol}}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: {name}, namespace: demo}}
subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{{port: {target_port}}}]}}]
"""
    if export:
        docs += f"""---
apiVersion: flomesh.io/v1alpha1
kind: ServiceExport
metadata: {{name: {name}, namespace: demo}}
spec:
  rules: [{{portNumber: {port}, path: /{cluster}/{name}, pathType: Prefix}}]
"""
    return docs


@contextlib.asynccontextmanager
async def ws_echo(name: str):
    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(f"{name}{request.path}:{msg.data}")
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_websocket_and_tcp_echo_across_clusters_over_mtls(tmp_path):
    async with greeting_backend("tcp-1") as tcp1, greeting_backend("tcp-3") as tcp3, ws_echo("ws-1") as ws1, \
            federation(tmp_path) as (controller, runtime):
        for cluster, port in (("cluster-1", tcp1), ("cluster-3", tcp3)):
            await controller.apply(backend(cluster, "store", TCP_PORT, "tcp", port, export=True), cluster=cluster)
        await controller.apply(backend("cluster-1", "chat", 8090, "http", ws1, export=True), cluster="cluster-1")
        await controller.apply("""
apiVersion: flomesh.io/v1alpha1
kind: GlobalTrafficPolicy
metadata: {name: store, namespace: demo}
spec:
  lbType: ActiveActive
  targets:
    - clusterKey: default/default/default/cluster-1
    - clusterKey: default/default/default/cluster-3
""", cluster="cluster-2")
        await synced(controller, runtime)

        # WebSocket: cluster-2's client, cluster-1's endpoint, through both proxies
        outbound = address(controller, "cluster-2", "outbound")
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"http://{outbound}/lobby", headers={"Host": "chat-cluster-1.demo:8090"}) as ws:
                await ws.send_str("hello")
                ws_reply = await ws.receive_str(timeout=10)

        # TCP: connections from cluster-2 balanced over cluster-1's and cluster-3's endpoints
        host = outbound.rpartition(":")[0]
        seen = Counter()
        for i in range(10):
            for _ in range(50):  # the listener opens once the routes are in
                try:
                    reader, writer = await asyncio.open_connection(host, TCP_PORT)
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            hello = await asyncio.wait_for(reader.readline(), 10)
            writer.write(b"payload %d" % i)
            # no half-close: a TLS hop cannot pass one on
            assert await asyncio.wait_for(reader.readexactly(9), 10) == b"payload %d" % i
            writer.close()
            seen[hello.strip().decode()] += 1
        await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as http:
            metrics = {}
            for cluster in ("cluster-1", "cluster-2"):
                async with http.get(f"http://{address(controller, cluster, 'admin')}/metrics") as r:
                    metrics[cluster] = await r.text()

    assert ws_reply == "ws-1/lobby:hello"
    assert set(seen) == {"tcp-1", "tcp-3"} and sum(seen.values()) == 10, seen
    outbound_tcp = [line for line in metrics["cluster-2"].splitlines()
                    if line.startswith("tcp_open_total{") and 'dst_service="store"' in line]
    assert outbound_tcp and all('tls="true"' in line for line in outbound_tcp), outbound_tcp
    assert sum(int(line.rsplit(" ", 1)[1]) for line in outbound_tcp) == 10
    gateway_tcp = [line for line in metrics["cluster-1"].splitlines()
                   if line.startswith("tcp_open_total{") and 'direction="gateway"' in line]
    assert any('src_cluster="cluster-2"' in line and 'dst_service="store"' in line for line in gateway_tcp)
    assert any('dst_service="chat"' in line and 'tls="true"' in line for line in gateway_tcp)  # the WebSocket
