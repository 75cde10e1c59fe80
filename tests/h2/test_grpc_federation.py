"""gRPC across the embedded federation (real grpcio client and grpc-echo replicas, mTLS
between clusters): per-call balancing over one channel, server streaming across clusters,
grpc-status failures in /metrics."""
from __future__ import annotations

import re
from collections import Counter

import aiohttp
import grpc
import pytest
import pytest_asyncio

from tests.h2.mesh import GRPC_AUTHORITY, federation
from tests.running import address

pytestmark = [pytest.mark.timeout(90), pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mesh(tmp_path_factory):
    async with federation(tmp_path_factory.mktemp("grpc")) as (controller, runtime):
        yield controller, runtime


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def channel(mesh):
    controller, _ = mesh
    async with grpc.aio.insecure_channel(address(controller, "cluster-2", "outbound"),
                                         options=[("grpc.default_authority", GRPC_AUTHORITY)]) as ch:
        yield ch


async def test_unary_calls_of_one_channel_spread_evenly_over_three_clusters(channel):
    say = channel.unary_unary("/meshtui.Echo/Say")
    seen = Counter()
    for i in range(300):
        reply = await say(b"call %d" % i, timeout=10)
        cluster, _, echoed = reply.partition(b"|")
        assert echoed == b"call %d" % i
        seen[cluster.decode()] += 1
    assert set(seen) == {"cluster-1", "cluster-2", "cluster-3"}, seen
    for cluster, n in seen.items():
        assert 90 <= n <= 110, seen  # within 10% of 100 each


async def test_server_streaming_call_across_clusters(mesh):
    controller, _ = mesh
    # cluster-2's mirrored name for cluster-3's export: every message comes from cluster-3
    async with grpc.aio.insecure_channel(address(controller, "cluster-2", "outbound"),
                                         options=[("grpc.default_authority", "grpc-echo-cluster-3.demo:9090")]) as ch:
        count = ch.unary_stream("/meshtui.Echo/Count")
        messages = [m async for m in count(b"50", timeout=10)]
    assert messages == [b"cluster-3|%d" % i for i in range(50)]


async def outbound_responses(controller) -> Counter:
    """cluster-2's outbound response_total for grpc-echo, by classification."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{address(controller, 'cluster-2', 'admin')}/metrics") as r:
            text = await r.text()
    out = Counter()
    for line in text.splitlines():
        if line.startswith("response_total{") and 'dst_service="grpc-echo"' in line and 'direction="outbound"' in line:
            n = int(line.rsplit(" ", 1)[1])
            out[re.search(r'classification="(\w+)"', line).group(1)] += n
            out["over mTLS"] += n if 'tls="true"' in line else 0
    return out


async def test_grpc_status_failures_are_counted_as_failures(mesh, channel):
    controller, _ = mesh
    before = await outbound_responses(controller)
    fail = channel.unary_unary("/meshtui.Echo/Fail")
    codes = []
    for code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.DATA_LOSS):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await fail(b"%d" % code.value[0], timeout=10)
        codes.append(info.value.code())
    assert codes == [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND,
                     grpc.StatusCode.DATA_LOSS]
    await channel.unary_unary("/meshtui.Echo/Say")(b"ok", timeout=10)
    after = await outbound_responses(controller)
    # INTERNAL, UNAVAILABLE and DATA_LOSS fail; NOT_FOUND is an answer, as Linkerd counts it
    assert after["failure"] - before["failure"] == 3, (before, after)
    assert after["success"] - before["success"] == 2, (before, after)
    assert after["over mTLS"] > 0, after  # the calls to cluster-1 and cluster-3 went through their gateways
