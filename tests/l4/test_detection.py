"""Protocol detection by a connection's first bytes, and which service ports get a listener
(pure)."""
from __future__ import annotations

import pytest

from proxy.config import BackendGroup, Endpoint, ProxyConfig, ServiceRoute
from proxy.protocols import H2, H2_PREFACE, HTTP1, OPAQUE, detect
from proxy.tcp.ports import DETECT, OPAQUE as OPAQUE_PORT, port_plans


@pytest.mark.parametrize("data, found", [
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1),
    (b"POST /x?y=1 HTTP/1.0\n", HTTP1),
    (b"M-SEARCH * HTTP/1.1\r\n", HTTP1),
    (H2_PREFACE + b"\x00\x00", H2),
    (b"GET", None),
    (b"GET /path", None),
    (b"GET / HTTP/1.", None),
    (b"GET / HTTP/1.1\r", None),
    (b"PRI * HTTP/2", None),  # the h2 preface so far
    (b"\x16\x03\x01\x02\x00\x01", OPAQUE),  # a TLS ClientHello
    (b"*1\r\n$4\r\nPING\r\n", OPAQUE),  # redis
    (b"hello world\n", OPAQUE),
    (b"GET / HTTP/2.0\r\n", OPAQUE),
    (b"GET / HTTX", OPAQUE),
    (b"GET / HTTP/1.1 extra\r\n", OPAQUE),
    (b"GET / HTTP/1.2\r", OPAQUE),
])
def test_detect_by_first_bytes(data, found):
    assert detect(data) == found


def test_an_endless_line_is_opaque():
    assert detect(b"GET /" + b"a" * 100, max_line=64) == OPAQUE


def route(name: str, port: int, protocol: str = "http", policy: str = "Locality") -> ServiceRoute:
    ep = Endpoint("127.0.0.1", 1, "c1")
    return ServiceRoute("demo", name, port, protocol, policy, ((BackendGroup("c1", 100, (ep,)),),))


def plans_of(*routes: ServiceRoute, port_listeners: bool = True, reserved: frozenset[int] = frozenset()):
    plans, errors = port_plans(ProxyConfig("c1", "k", routes=routes, port_listeners=port_listeners), reserved)
    return {p: (plan.mode, plan.services) for p, plan in plans.items()}, errors


def test_every_service_port_detects_and_tcp_ports_stay_opaque():
    plans, errors = plans_of(route("web", 8080), route("api", 8080), route("grpc", 9090, "grpc"),
                             route("store", 7000, "tcp"), route("web-c2", 8081, policy="Mirror"))
    assert plans == {7000: (OPAQUE_PORT, ["store.demo"]), 8080: (DETECT, ["api.demo", "web.demo"]),
                     9090: (DETECT, ["grpc.demo"])}
    assert errors == {}


def test_without_port_listeners_only_tcp_ports_listen():
    plans, _ = plans_of(route("web", 8080), route("store", 7000, "tcp"), port_listeners=False)
    assert plans == {7000: (OPAQUE_PORT, ["store.demo"])}


def test_a_tcp_port_is_not_shared_and_own_ports_are_not_taken():
    plans, errors = plans_of(route("store", 7000, "tcp"), route("web", 7000), route("web", 4140),
                             reserved=frozenset({4140}))
    assert plans == {7000: (OPAQUE_PORT, ["store.demo"])}
    assert errors == {
        7000: "port 7000 is the tcp port of store.demo: web.demo get no listener there "
              "(call them through the outbound listener)",
        4140: "port 4140 of web.demo is one of the proxy's own ports",
    }


def test_an_ambiguous_port_names_its_services():
    plans, _ = port_plans(ProxyConfig("c1", "k", routes=(route("a", 80), route("b", 80)), port_listeners=True))
    assert plans[80].target is None
    assert "port 80 of cluster c1 is shared by a.demo, b.demo" in plans[80].ambiguity("c1")


def test_port_listeners_survive_the_json_round_trip():
    cfg = ProxyConfig("c1", "k", routes=(route("a", 80),), port_listeners=True)
    assert ProxyConfig.from_dict(cfg.to_dict()) == cfg
    assert ProxyConfig.from_dict({"cluster": "c1", "cluster_key": "k"}).port_listeners is False


def test_the_cluster_status_lists_service_ports_on_the_proxy_address():
    from controller.federation.layout import ProxyPlan
    from controller.federation.service_ports import service_ports
    plan = ProxyPlan("c1", outbound="127.0.9.1:4140", gateway="127.0.9.1:4143", admin="127.0.9.1:4191")
    cfg = ProxyConfig("c1", "k", routes=(route("web", 8080), route("store", 7000, "tcp"), route("odd", 4143)),
                      port_listeners=True)
    ports, errors = service_ports(plan, cfg)
    assert ports == [{"address": "127.0.9.1:7000", "mode": "opaque", "services": ["store.demo"]},
                     {"address": "127.0.9.1:8080", "mode": "detect", "services": ["web.demo"]}]
    assert errors == ["port 4143 of odd.demo is one of the proxy's own ports"]
