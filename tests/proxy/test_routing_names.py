import pytest

from proxy.routing.names import parse_authority


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("httpbin.httpbin", ("httpbin", "httpbin", None)),
        ("httpbin.httpbin:8080", ("httpbin", "httpbin", 8080)),
        ("web.shop.svc.cluster.local", ("shop", "web", None)),
        ("web.shop.svc.cluster.local:80", ("shop", "web", 80)),
        ("web.shop.svc.clusterset.local:9090", ("shop", "web", 9090)),
        ("WEB.Shop.SVC.Cluster.Local", ("shop", "web", None)),
        ("web.shop.", ("shop", "web", None)),
        ("web.shop.svc.cluster.local.:8080", ("shop", "web", 8080)),
        ("httpbin-cluster-3.httpbin:8080", ("httpbin", "httpbin-cluster-3", 8080)),
        ("a.b:65535", ("b", "a", 65535)),
    ],
)
def test_service_names_resolve_to_namespace_name_port(authority, expected):
    assert parse_authority(authority) == expected


@pytest.mark.parametrize(
    "authority",
    [
        "",
        "httpbin",  # no namespace
        "httpbin:8080",
        "a.b.c",  # three labels are not a service name
        "web.shop.svc.cluster",
        "web.shop.svc.example.local",
        "web.shop.pod.cluster.local",
        "web.shop.svc.cluster.local.extra",
        "web.shop:0",
        "web.shop:65536",
        "web.shop:",
        "web.shop:http",
        "-web.shop",
        "web-.shop",
        "we_b.shop",
        "127.0.0.1:8080",
        "[::1]:8080",
        "web..shop",
        "web.shop..",
        "web.shop:80:80",
        "x" * 64 + ".shop",
    ],
)
def test_anything_else_is_not_a_service_name(authority):
    assert parse_authority(authority) is None
