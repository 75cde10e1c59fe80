"""ExternalService: a mesh name for a server outside the mesh, reconciled into routes, called
through the outbound proxy with TLS originated by the proxy (test CA, loopback servers only)."""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import grpc
import pytest
from aiohttp import web

from controller.embedded import EmbeddedController
from controller.errors import MeshError
from controller.settings import random_loopback_base
from proxy.events import TapFilter
from proxy.samples.grpc_echo import Echo
from tests.h2.support import proxy
from tests.proxy.http_support import make_ca, make_leaf, server_context
from tests.support import fixture_text

pytestmark = pytest.mark.timeout(30)
NAME = "api.example.test"  # the external server's certificate name


def external(port: int, *, ca: str = "", ca_file: str = "", protocol: str = "http", name: str = "api") -> str:
    tls = ""
    if ca:
        tls = "  tls:\n    serverName: " + NAME + "\n    caBundle: |\n" + "".join(
            f"      {line}\n" for line in ca.strip().splitlines())
    elif ca_file:
        tls = f"  tls: {{serverName: {NAME}, caFile: {ca_file}}}\n"
    return (f"apiVersion: meshtui.io/v1alpha1\nkind: ExternalService\nmetadata: {{name: {name}, namespace: payments}}\n"
            f"spec:\n  host: 127.0.0.1\n  port: {port}\n  appProtocol: {protocol}\n{tls}")


@contextlib.asynccontextmanager
async def controller(tmp_path):
    c = await EmbeddedController.open(tmp_path / "state", loopback_base=random_loopback_base())
    try:
        await c.apply(fixture_text("fsm_clusters.yaml"))
        yield c
    finally:
        await c.close()


@contextlib.asynccontextmanager
async def https_server(tmp_path, ca):
    leaf = make_leaf(tmp_path, ca, "external", dns=NAME)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"outside the mesh: {request.path} over {request.scheme}\n")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(leaf, require_client=False)).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_an_external_service_is_called_through_the_proxy_with_tls_origination(tmp_path):
    ca = make_ca(tmp_path)
    ca_pem = ca[2].read_text()
    async with https_server(tmp_path, ca) as port, controller(tmp_path) as ctl:
        await ctl.apply(external(port, ca=ca_pem), cluster="cluster-1")
        cfg = ctl.core.proxy_config("cluster-1")
        route = next(r for r in cfg.routes if r.name == "api")
        [[group]] = route.tiers
        assert (route.port, route.protocol, route.policy) == (port, "http", "External")
        assert (group.endpoints[0].tls_server_name, group.endpoints[0].tls_ca) == (NAME, ca_pem)
        async with proxy(cfg.to_dict()) as plane:
            sub = plane.tap.subscribe(TapFilter(service="api", kinds=("response_end",)))
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{plane.addresses()['outbound']}/v1/pay",
                                    headers={"Host": f"api.payments:{port}"}) as r:
                    answer = (r.status, await r.text())
            event = await asyncio.wait_for(sub.__anext__(), 5)
            sub.close()
            metrics = plane.metrics.render()
    assert answer == (200, "outside the mesh: /v1/pay over https\n")  # plain to the proxy, TLS beyond it
    assert (event.status, event.dst_service, event.dst_endpoint) == (200, "api", f"127.0.0.1:{port}")
    assert 'dst_namespace="payments",dst_service="api",tls="true",classification="success",status_code="200"} 1' \
        in metrics


async def test_a_server_that_the_bundle_does_not_vouch_for_is_refused(tmp_path):
    (tmp_path / "other").mkdir()
    ca, other = make_ca(tmp_path), make_ca(tmp_path / "other")
    async with https_server(tmp_path, ca) as port, controller(tmp_path) as ctl:
        await ctl.apply(external(port, ca_file=str(other[2])), cluster="cluster-1")
        async with proxy(ctl.core.proxy_config("cluster-1").to_dict()) as plane:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{plane.addresses()['outbound']}/",
                                    headers={"Host": f"api.payments:{port}"}) as r:
                    answer = (r.status, await r.text())
    assert answer[0] == 502
    assert "TLS handshake with 127.0.0.1" in answer[1] and "CERTIFICATE_VERIFY_FAILED" in answer[1]


async def test_grpc_to_an_external_tls_server_goes_over_h2(tmp_path):
    ca = make_ca(tmp_path)
    leaf = make_leaf(tmp_path, ca, "grpc-external", dns=NAME)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Echo("external").handler(),))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(leaf.key.read_bytes(),
                                                                                leaf.cert.read_bytes())]))
    await server.start()
    try:
        async with controller(tmp_path) as ctl:
            await ctl.apply(external(port, ca=ca[2].read_text(), protocol="grpc", name="ledger"), cluster="cluster-1")
            async with proxy(ctl.core.proxy_config("cluster-1").to_dict()) as plane:
                async with grpc.aio.insecure_channel(plane.addresses()["outbound"], options=[
                        ("grpc.default_authority", f"ledger.payments:{port}")]) as ch:
                    reply = await ch.unary_unary("/meshtui.Echo/Say")(b"hi", timeout=5)
    finally:
        await server.stop(0)
    assert reply == b"external|hi"


async def test_invalid_external_services_are_refused_with_the_field(tmp_path):
    async with controller(tmp_path) as ctl:
        with pytest.raises(MeshError, match="caBundle.*PEM certificates"):
            await ctl.apply(external(443, ca="not a certificate"), cluster="cluster-1")
        with pytest.raises(MeshError, match="port"):
            await ctl.apply(external(0), cluster="cluster-1")
        assert not [r for r in ctl.core.proxy_config("cluster-1").routes if r.name == "api"]
