"""The API's HTTP surface: error bodies, limits, metrics, tap and golden metrics, TLS."""
from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controller.api.keys import IN_FLIGHT
from controller.embedded import EmbeddedController
from controller.errors import Unavailable
from controller.interface import CheckResult, GoldenRow
from proxy.events import TapDropped, TapEvent, TapFilter

from .conftest import FIXTURES


async def _call(api, method: str, path: str, role: str = "admin", **kwargs) -> tuple[int, dict | str]:
    headers = {"Authorization": f"Bearer {api.tokens.by_role[role]}", **kwargs.pop("headers", {})}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{api.url}{path}", headers=headers, **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body


async def test_malformed_requests_are_400_naming_the_problem(api):
    status, body = await _call(api, "POST", "/api/v1/apply", data=b'{"manifests": [}')
    assert status == 400 and body["reason"] == "BadRequest"
    assert body["message"] == "request body is not valid JSON: Expecting value at line 1 column 16"
    status, body = await _call(api, "POST", "/api/v1/apply", json={"manifests": 42})
    assert (status, body["message"]) == (400, "field manifests must be a string of YAML/JSON documents or a list of objects")
    status, body = await _call(api, "POST", "/api/v1/apply", json={"manifests": "", "cluster": 7})
    assert (status, body["message"]) == (400, "field cluster must be a string")
    status, body = await _call(api, "GET", "/api/v1/audit?limit=lots")
    assert (status, body["message"]) == (400, "query parameter limit must be an integer, got 'lots'")
    status, body = await _call(api, "GET", "/api/v1/golden?window=5m")
    assert (status, body["message"]) == (400, "query parameter window must be one of 10s, 1m, got '5m'")
    status, body = await _call(api, "GET", "/api/v1/tap?max_rps=fast")
    assert status == 400 and body["message"].startswith("bad tap filter:")


async def test_a_bad_manifest_is_422_with_the_validation_message(api):
    status, body = await _call(api, "POST", "/api/v1/apply", json={"manifests": "kind: [", "source": "x.yaml"})
    assert status == 422 and body["kind"] == "Status" and body["reason"] == "Invalid"
    assert body["message"].startswith("x.yaml: malformed YAML at line 1")


async def test_a_body_over_the_limit_is_413(start_api):
    api = await start_api(max_body=1024)
    status, body = await _call(api, "POST", "/api/v1/apply", json={"manifests": "x" * 2000})
    assert status == 413 and body["reason"] == "RequestEntityTooLarge"
    assert "1024" in body["message"]


async def test_unknown_routes_and_methods_answer_with_a_status_body(api):
    status, body = await _call(api, "GET", "/api/v1/nothing-here")
    assert (status, body["reason"]) == (404, "NotFound")
    status, body = await _call(api, "PUT", "/api/v1/apply")
    assert (status, body["reason"]) == (405, "MethodNotAllowed")


class ChecksWithABug(EmbeddedController):
    async def checks(self) -> list[CheckResult]:
        raise KeyError("gateway")


async def test_a_bug_is_a_500_and_the_server_keeps_serving(start_api, tmp_path, caplog):
    api = await start_api(await ChecksWithABug.open(tmp_path / "state"))
    status, body = await _call(api, "GET", "/api/v1/checks")
    assert (status, body["reason"], body["message"]) == (500, "InternalError", "internal error: KeyError: 'gateway'")
    assert "GET /api/v1/checks failed" in caplog.text and "Traceback" in caplog.text
    status, body = await _call(api, "GET", "/api/v1/resources/clusters")
    assert (status, body["items"]) == (200, [])


async def test_metrics_count_requests_by_route_and_code_and_resources_by_kind(api):
    remote = api.client()
    await remote.apply((FIXTURES / "fsm_clusters.yaml").read_text())
    await remote.list("clusters")
    await _call(api, "DELETE", "/api/v1/resources/cluster/cluster-1", role="viewer")
    status, text = await _call(api, "GET", "/metrics", role="viewer")
    assert status == 200
    assert 'meshtui_api_requests_total{code="200",method="POST",route="/api/v1/apply"} 1.0' in text
    assert 'meshtui_api_requests_total{code="200",method="GET",route="/api/v1/resources/{kind}"} 1.0' in text
    assert 'meshtui_api_requests_total{code="403",method="DELETE",route="/api/v1/resources/{kind}/{name}"} 1.0' in text
    assert 'meshtui_resources{kind="Cluster"} 3.0' in text
    assert 'meshtui_resources{kind="ServiceExport"} 0.0' in text


class ScriptedTraffic:
    """A data plane that replays given tap events, golden rows and checks (the DataPlane protocol)."""

    def __init__(self, events: list[TapEvent]):
        self.events = events
        self.filters: list[TapFilter] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def tap(self, flt: TapFilter) -> AsyncIterator[TapEvent | TapDropped]:
        self.filters.append(flt)
        for e in self.events:
            if flt.matches(e):
                yield e
        yield TapDropped(3)
        await asyncio.Event().wait()

    async def golden(self, window: str) -> list[GoldenRow]:
        return [GoldenRow("service", window, cluster="cluster-2", namespace="httpbin", service="httpbin", requests=10,
                          success_rate=0.9, rps=1.0, p50_ms=2.0, p95_ms=5.0, p99_ms=9.5)]

    async def checks(self) -> list[CheckResult]:
        return [CheckResult("gateways", "gateways answer probes", False, "cluster-3 gateway down", "start it", warning=True)]


async def test_tap_golden_and_checks_cross_the_api(start_api, tmp_path):
    ctl = await EmbeddedController.open(tmp_path / "state")
    events = [
        TapEvent("1", "request_init", "outbound", "cluster-2", dst_namespace="httpbin", dst_service="httpbin", method="GET", path="/a"),
        TapEvent("2", "request_init", "outbound", "cluster-2", dst_namespace="httpbin", dst_service="other", method="GET", path="/a"),
        TapEvent("3", "response_end", "outbound", "cluster-2", dst_namespace="httpbin", dst_service="httpbin", method="POST",
                 path="/api/x", status=503, tls=True, grpc_status=14, error="no endpoints"),
    ]
    traffic = ScriptedTraffic(events)
    ctl.attach_dataplane(traffic)
    api = await start_api(ctl)
    remote = api.client()
    flt = TapFilter(cluster="cluster-2", namespace="httpbin", service="httpbin", max_rps=50, kinds=("request_init", "response_end"))
    stream = remote.tap(flt)
    got = [await asyncio.wait_for(anext(stream), 5) for _ in range(3)]
    await stream.aclose()
    assert got == [events[0], events[2], TapDropped(3)]
    assert traffic.filters == [flt]
    [row] = await remote.golden("1m")
    assert (row.window, row.service, row.success_rate, row.p99_ms) == ("1m", "httpbin", 0.9, 9.5)
    checks = await remote.checks()
    assert checks[-1] == CheckResult("gateways", "gateways answer probes", False, "cluster-3 gateway down", "start it", warning=True)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshtui controller")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "api.crt", directory / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


async def test_the_api_over_tls(start_api, tmp_path):
    from controller.headless import server_tls

    cert, key = _self_signed(tmp_path)
    api = await start_api(tls=server_tls(str(cert), str(key)))
    assert api.url.startswith("https://127.0.0.1:")
    trusted = api.client(ssl=ssl.create_default_context(cafile=str(cert)))
    await trusted.apply((FIXTURES / "fsm_clusters.yaml").read_text())
    assert len(await trusted.list("clusters")) == 3
    untrusted = api.client()
    with pytest.raises(Unavailable, match="TLS certificate is not trusted"):
        await untrusted.list("clusters")
    plain = api.client()
    plain.url = api.url.replace("https://", "http://")
    with pytest.raises(Unavailable, match="lost the connection to the controller at http://"):
        await plain.list("clusters")


async def test_a_request_in_flight_when_the_server_stops_is_answered(api):
    """Its body is still arriving when the stop begins: new connections are refused, it completes."""
    await api.client().apply((FIXTURES / "fsm_clusters.yaml").read_text())
    host, port = api.url.removeprefix("http://").split(":")
    body = b'{"manifests": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "late", "namespace": "ns"}}], "cluster": "cluster-1"}'
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /api/v1/apply HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api.tokens.admin}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:10])
    await writer.drain()
    while api.server.app[IN_FLIGHT].count == 0:
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(api.server.stop())
    await asyncio.sleep(0.1)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))
    assert not stopping.done()
    writer.write(body[10:])
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await stopping
    assert response.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in response
    assert (await api.controller.get("svc", "late", cluster="cluster-1", namespace="ns"))["metadata"]["name"] == "late"
