"""Pure parts of the embedded federation: what runs where, readiness, probe targets and verdicts,
the tap buffer."""
import asyncio

from controller.embedded import EmbeddedController
from controller.federation.layout import proxy_plans, replica_plans
from controller.federation.probes import ProbeState, probe_targets, record_probe
from controller.federation.readiness import without_unready
from controller.federation.tapfanin import CompactLines, TapMerge, parse_line
from proxy.events import TapDropped, TapEvent, TapFilter
from proxy.tap import CompactEncoder, TapHub, TapRoute, ndjson
from tests.support import apply_reference, fixture_text

LINK = """
apiVersion: meshtui.io/v1alpha1
kind: Link
metadata: {name: c2-to-c1}
spec:
  sourceCluster: cluster-2
  targetCluster: cluster-1
  probe: {path: /live, port: 9999, period: 0.5, failureThreshold: 2, timeout: 0.25}
"""


async def reference() -> EmbeddedController:
    c = await EmbeddedController.open(None, loopback_base="127.77")
    await apply_reference(c, policy="fsm_gtp_failover.yaml")
    return c


async def test_plans_follow_the_resources():
    c = await reference()
    plans = proxy_plans(c.core.state)
    assert sorted(plans) == ["cluster-1", "cluster-2", "cluster-3"]
    p = plans["cluster-1"]
    assert (p.outbound, p.gateway, p.admin) == ("127.77.11.1:4140", "127.77.11.1:4143", "127.77.11.1:4191")
    argv = p.argv("/s/config.json", "tok", "py")
    assert argv[:3] == ("py", "-m", "proxy") and "--admin-token=tok" in argv and "--cluster" in argv
    reps = replica_plans(c.core.state)
    assert [r.address for r in reps.values()] == ["127.77.11.20:8080", "127.77.13.20:8080"]
    r = reps[("cluster-1", "httpbin", "httpbin", "127.77.11.20")]
    assert "--message=Hi, I am from cluster-1 and controlled by mesh!" in r.argv("py")

    await c.apply(fixture_text("fsm_httpbin_cluster-1.yaml").replace("replicas: 1", "replicas: 3"), cluster="cluster-1")
    assert sorted(k[3] for k in replica_plans(c.core.state) if k[0] == "cluster-1") == ["127.77.11.20", "127.77.11.21", "127.77.11.22"]
    await c.apply('{"apiVersion": "v1", "kind": "Cluster", "metadata": {"name": "remote"}, '
                  '"spec": {"kubeconfig": "/k", "gatewayHost": "10.0.0.9", "gatewayPort": 8091}}'.replace('"v1"', '"flomesh.io/v1alpha1"'))
    assert "remote" not in proxy_plans(c.core.state)  # a Kubernetes cluster runs its own proxies


async def test_unready_replicas_leave_the_routes_but_gateways_stay():
    c = await reference()
    await c.apply(fixture_text("fsm_httpbin_cluster-1.yaml").replace("cluster-1", "cluster-2"), cluster="cluster-2")
    config = c.core.proxy_config("cluster-2")
    local = "127.77.12.20:8080"
    route = next(r for r in config.routes if (r.namespace, r.name, r.port) == ("httpbin", "httpbin", 8080))
    assert [e.address for g in route.tiers[0] for e in g.endpoints] == [local]
    stripped = without_unready(config, frozenset({local}))
    route2 = next(r for r in stripped.routes if r.key == route.key)
    assert route2.tiers[0] == ()  # FailOver's local tier is empty: the targets serve
    assert route2.tiers[1] == route.tiers[1]  # gateway endpoints are never stripped
    rule = next(g for g in c.core.proxy_config("cluster-1").gateway if g.service == "httpbin")
    assert without_unready(c.core.proxy_config("cluster-1"), frozenset({"127.77.11.20:8080"})).gateway[0].endpoints == ()
    assert rule.endpoints
    assert without_unready(config, frozenset()) is config


async def test_probe_targets_default_to_the_admin_port_and_links_override():
    c = await reference()
    plans = proxy_plans(c.core.state)
    t = probe_targets(c.core.state, plans)
    assert t["cluster-3"].url == "http://127.77.13.1:4191/ready" and t["cluster-3"].gateway == "127.77.13.1:4143"
    assert (t["cluster-3"].period_s, t["cluster-3"].failure_threshold) == (2.0, 3)
    await c.apply(LINK)
    t = probe_targets(c.core.state, plans)["cluster-1"]
    assert (t.url, t.period_s, t.timeout_s, t.failure_threshold) == ("http://127.77.11.1:9999/live", 0.5, 0.25, 2)


def test_probe_verdict_needs_the_threshold_of_failures():
    st = ProbeState()
    assert record_probe(st, True, 1.5, "", 3) is True  # first verdict
    assert record_probe(st, False, None, "refused", 3) is False
    assert record_probe(st, False, None, "refused", 3) is False and st.alive
    assert record_probe(st, False, None, "refused", 3) is True and not st.alive and st.error == "refused"
    assert record_probe(st, True, 0.9, "", 3) is True and st.alive and st.failures == 0 and st.latency_ms == 0.9


async def test_tap_merge_is_bounded_and_reports_what_it_dropped():
    merge = TapMerge(buffer=3)
    for i in range(10):
        merge.offer(TapEvent(id=str(i), kind="request_init", direction="outbound", cluster="c"))
    merge.offer(TapDropped(7))  # a proxy's own drop notice, while the buffer is full
    first = await merge.next()
    assert isinstance(first, TapDropped) and first.dropped == 7 + 7
    got = [await merge.next() for _ in range(3)]
    assert [e.id for e in got] == ["0", "1", "2"]
    assert merge.dropped == 0
    waiter = asyncio.ensure_future(merge.next())
    await asyncio.sleep(0)
    assert not waiter.done()
    merge.offer(TapEvent(id="x", kind="response_end", direction="gateway", cluster="c"))
    assert (await waiter).id == "x"


def test_tap_lines_parse_to_events_or_drop_notices():
    e = parse_line(b'{"id": "1", "kind": "request_init", "direction": "outbound", "cluster": "c", "path": "/p"}\n')
    assert isinstance(e, TapEvent) and e.path == "/p"
    assert parse_line(b'{"kind": "dropped", "dropped": 4}') == TapDropped(4)
    assert parse_line(b"not json") is None
    assert parse_line(b'{"kind": "request_init", "unknown_field": 1}') is None


def test_a_compact_stream_reads_as_the_same_events_as_the_json_one():
    hub = TapHub()
    full, compact = hub.subscribe(TapFilter()), hub.subscribe(TapFilter())
    routes = [TapRoute(TapEvent(id=f"c1:outbound:{i}:", kind="request_init", direction="outbound", cluster="c1",
                                dst_service=f"s{i}", dst_endpoint="127.0.0.1:80", authority=f"s{i}.ns", tls=bool(i)))
              for i in range(2)]
    for n in range(6):
        x = hub.open(routes[n % 2], n, b"GET", b"/p?n=%d" % n)
        x.phase("response_init", 200 + n, 0.5 * n)
        x.phase("response_end", 200 + n, 0.5 * n, n, 10 * n, "broke" if n == 5 else "", grpc_status=n or None)
    hub.publish(TapEvent(id="whole", kind="response_end", direction="gateway", cluster="c1", status=204))
    encode, parse = CompactEncoder(), CompactLines()
    from_json = [parse_line(line) for line in ndjson(full.take()).splitlines()]
    items = compact.take()
    lines = encode([items.popleft() for _ in range(3)]).splitlines() + encode(items).splitlines()  # in two batches
    from_compact = [e for line in lines for e in parse(line)]
    assert len(from_json) == 19 and from_compact == from_json
    # most requests went out whole: one line for their three events
    assert sum(line.startswith(b"[") for line in lines) < 19
    assert parse(b"[99,1,0,0,0.0,0.0,0,1.0,\"GET\",\"/\",\"\",null]") == []  # an undefined route
    assert parse(b"[1,2,3]") == [] and parse(b"nonsense") == [] and parse(b"[1,2,3,4]") == []
