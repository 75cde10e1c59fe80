"""The admin port: config updates (auth, validation, atomic swap, persistence),
metrics, tap stream, endpoint health, gateway probe verdicts."""
from __future__ import annotations

import asyncio
import json
import re
import socket

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

import proxy.admin as admin_module
from tests.proxy.http_support import config, data_plane, endpoint, route, text_handler, upstreams, url

AUTH = {"Authorization": "Bearer secret"}
HOST = {"Host": "httpbin.httpbin:8080"}


def routes_to(port: int, version: int = 1, **kw) -> dict:
    return config("c1", [route("httpbin", "httpbin", 8080, [[("c1", [endpoint(port, "c1", **kw)])]])],
                  version=version)


async def put_config(s: aiohttp.ClientSession, plane, body, headers=AUTH) -> tuple[int, str]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with s.put(url(plane, "admin", "/config"), data=data, headers=headers) as r:
        return r.status, await r.text()


async def test_put_config_needs_the_token_and_valid_input(tmp_path):
    saved = tmp_path / "state" / "c1.json"
    async with upstreams(text_handler("v2")) as (up,):
        async with data_plane("c1", admin=True, config_file=str(saved)) as plane, aiohttp.ClientSession() as s:
            good = routes_to(up.port, version=2)
            status, text = await put_config(s, plane, good, headers={})
            assert status == 401 and "missing bearer token" in text
            assert (await put_config(s, plane, good, headers={"Authorization": "Bearer nope"}))[0] == 403
            status, text = await put_config(s, plane, b"{not json")
            assert status == 400 and text.startswith("body is not valid JSON")
            status, text = await put_config(s, plane, {"cluster": "c1"})
            assert (status, text) == (400, "config: missing field 'cluster_key'\n")
            status, text = await put_config(s, plane, {**good, "cluster": "c9"})
            assert status == 400 and "config is for cluster 'c9'; this proxy serves 'c1'" in text
            bad_balancer = routes_to(up.port)
            bad_balancer["routes"][0]["balancer"] = "random"
            status, text = await put_config(s, plane, bad_balancer)
            assert status == 400 and "unknown balancer 'random'" in text
            assert not saved.exists()  # nothing refused was stored

            async with s.get(url(plane, "outbound"), headers=HOST) as r:
                assert r.status == 503  # no routes yet
            assert await put_config(s, plane, good) == (200, '{"version": 2}')
            async with s.get(url(plane, "outbound"), headers=HOST) as r:
                assert (r.status, await r.text()) == (200, "v2\n")
            async with s.get(url(plane, "admin", "/config")) as r:
                assert await r.json() == json.loads(json.dumps(plane.live.config.to_dict()))
                assert (await r.json())["version"] == 2
            await plane.live.flush()
            assert json.loads(saved.read_text())["version"] == 2
            assert [p.name for p in saved.parent.iterdir()] == ["c1.json"]  # no temp file left


async def test_writes_are_refused_without_a_configured_token():
    async with data_plane("c1", admin=True, token="") as plane, aiohttp.ClientSession() as s:
        status, text = await put_config(s, plane, config("c1"), headers={"Authorization": "Bearer x"})
        assert status == 403 and "started without --admin-token" in text


async def test_metrics_are_prometheus_text_with_linkerd_names():
    async with upstreams(text_handler("a")) as (up,):
        async with data_plane("c1", routes_to(up.port), admin=True) as plane, aiohttp.ClientSession() as s:
            for _ in range(3):
                async with s.get(url(plane, "outbound"), headers=HOST) as r:
                    assert r.status == 200
            async with s.get(url(plane, "admin", "/metrics")) as r:
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = [smp for smp in families["request"].samples
                if smp.labels.get("direction") == "outbound" and smp.labels.get("dst_service") == "httpbin"]
    assert requests and requests[0].value == 3
    assert requests[0].labels["dst_namespace"] == "httpbin" and requests[0].labels["dst_cluster"] == "c1"
    responses = [smp for smp in families["response"].samples if smp.labels.get("status_code") == "200"]
    assert responses[0].value == 3 and responses[0].labels["classification"] == "success"
    count = [smp for smp in families["response_latency_ms"].samples if smp.name == "response_latency_ms_count"]
    assert count[0].value == 3


async def test_tap_streams_events_of_matching_requests():
    async with upstreams(text_handler("a")) as (up,):
        cfg = config("c1", [
            route("httpbin", "httpbin", 8080, [[("c1", [endpoint(up.port, "c1")])]]),
            route("other", "httpbin", 8080, [[("c1", [endpoint(up.port, "c1")])]]),
        ])
        async with data_plane("c1", cfg, admin=True) as plane, aiohttp.ClientSession() as s:
            assert not plane.tap.active
            async with s.get(url(plane, "admin", "/tap?service=httpbin&namespace=httpbin")) as tap:
                assert tap.headers["Content-Type"] == "application/x-ndjson"
                await _until(lambda: plane.tap.active)
                async with s.get(url(plane, "outbound", "/x?y=1"), headers={"Host": "other.httpbin:8080"}) as r:
                    await r.read()  # filtered out
                async with s.get(url(plane, "outbound", "/x?y=1"), headers=HOST) as r:
                    await r.read()
                lines = [json.loads(await asyncio.wait_for(tap.content.readline(), 5)) for _ in range(3)]
            await _until(lambda: not plane.tap.active)  # the subscription ended with the stream
    assert [e["kind"] for e in lines] == ["request_init", "response_init", "response_end"]
    assert len({e["id"] for e in lines}) == 1
    end = lines[2]
    assert (end["direction"], end["cluster"], end["dst_service"], end["dst_endpoint"]) == (
        "outbound", "c1", "httpbin", f"127.0.0.1:{up.port}")
    assert (end["method"], end["path"], end["authority"], end["status"], end["bytes"]) == (
        "GET", "/x?y=1", "httpbin.httpbin:8080", 200, 2)
    assert end["duration_ms"] >= end["latency_ms"] > 0
    changing = {"kind", "status", "latency_ms", "duration_ms", "bytes", "error", "ts"}
    for later in lines[1:]:  # the later events of a request repeat what is known of it
        assert {k: v for k, v in later.items() if k not in changing} == \
            {k: v for k, v in lines[0].items() if k not in changing}
    assert lines[1]["status"] == 200 and lines[1]["latency_ms"] > 0


async def test_bad_tap_filter_is_400():
    async with data_plane("c1", admin=True) as plane, aiohttp.ClientSession() as s:
        for query, message in (("max_rps=-1", "max_rps must be >= 0"), ("max_rps=fast", "could not convert"),
                               ("format=xml", "bad tap format 'xml': one of json, compact")):
            async with s.get(url(plane, "admin", f"/tap?{query}")) as r:
                assert r.status == 400 and message in await r.text()
        assert not plane.tap.active


async def test_a_compact_tap_stream_defines_the_route_then_sends_arrays():
    async with upstreams(text_handler("a")) as (up,):
        cfg = config("c1", [route("httpbin", "httpbin", 8080, [[("c1", [endpoint(up.port, "c1")])]])])
        async with data_plane("c1", cfg, admin=True) as plane, aiohttp.ClientSession() as s:
            async with s.get(url(plane, "admin", "/tap?format=compact&kinds=response_end")) as tap:
                await _until(lambda: plane.tap.active)
                for _ in range(2):
                    async with s.get(url(plane, "outbound", "/x"), headers=HOST) as r:
                        await r.read()
                lines = [json.loads(await asyncio.wait_for(tap.content.readline(), 5)) for _ in range(3)]
    definition, first, second = lines
    assert (definition["dst_service"], definition["dst_endpoint"]) == ("httpbin", f"127.0.0.1:{up.port}")
    assert [first[0], first[2], first[3], first[8], first[9]] == [definition["route"], 2, 200, "GET", "/x"]
    assert second[0] == definition["route"] and second[1] == first[1] + 1


async def _until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_gateway_verdicts_take_remote_endpoints_out_and_back():
    async with upstreams(text_handler("remote")) as (up,):
        cfg = routes_to(up.port, gateway=True, prefix="")
        async with data_plane("c1", cfg, admin=True) as plane, aiohttp.ClientSession() as s:
            gateways = url(plane, "admin", "/gateways")
            address = f"127.0.0.1:{up.port}"
            async with s.put(gateways, json={address: False}) as r:
                assert r.status == 401
            async with s.put(gateways, json={address: "maybe"}, headers=AUTH) as r:
                assert r.status == 400 and address in await r.text()
            async with s.put(gateways, json={address: {"alive": False, "cluster": "c1", "latency_ms": 3}},
                             headers=AUTH) as r:
                assert (r.status, await r.json()) == (200, {"updated": 1})
            async with s.get(url(plane, "outbound"), headers=HOST) as r:
                assert r.status == 503
            async with s.get(url(plane, "admin", "/endpoints")) as r:
                (snap,) = await r.json()
                assert (snap["address"], snap["available"]) == (address, False)
            async with s.put(gateways, json={address: True}, headers=AUTH) as r:
                assert r.status == 200
            async with s.get(url(plane, "outbound"), headers=HOST) as r:
                assert (r.status, await r.text()) == (200, "remote\n")
            async with s.get(url(plane, "admin", "/metrics")) as r:
                assert 'gateway_alive{' in await r.text()


async def test_ready_and_live():
    async with data_plane("c1", config("c1", version=7), admin=True) as plane, aiohttp.ClientSession() as s:
        async with s.get(url(plane, "admin", "/ready")) as r:
            assert (r.status, await r.text()) == (200, "ready (config version 7)\n")
        async with s.get(url(plane, "admin", "/live")) as r:
            assert r.status == 200


async def test_rapid_pushes_leave_the_last_config_on_disk(tmp_path):
    saved = tmp_path / "c1.json"
    async with data_plane("c1", admin=True, config_file=str(saved)) as plane, aiohttp.ClientSession() as s:
        for version in range(1, 21):
            assert (await put_config(s, plane, config("c1", version=version)))[0] == 200
        await plane.live.flush()
        assert json.loads(saved.read_text())["version"] == 20 == plane.live.config.version


async def test_unknown_resources_and_methods_are_refused_by_name():
    async with data_plane("c1", admin=True) as plane, aiohttp.ClientSession() as s:
        async with s.get(url(plane, "admin", "/nothing")) as r:
            assert (r.status, await r.text()) == (404, "no admin resource at /nothing\n")
        async with s.delete(url(plane, "admin", "/config")) as r:
            assert (r.status, r.headers["Allow"]) == (405, "GET, PUT")
            assert await r.text() == "DELETE not allowed on /config (allowed: GET, PUT)\n"
        async with s.get(url(plane, "admin", "/config")) as r:
            assert r.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_a_body_past_the_limit_is_413(monkeypatch):
    monkeypatch.setattr(admin_module, "MAX_BODY", 1000)
    async with data_plane("c1", admin=True) as plane, aiohttp.ClientSession() as s:
        status, text = await put_config(s, plane, b"x" * 1001)
        assert (status, text) == (413, "request body larger than 1000 bytes\n")
        assert plane.live.config.version == 0


async def test_tap_stream_carries_every_event_in_order_and_ends_with_the_proxy():
    async with upstreams(text_handler("a")) as (up,):
        async with data_plane("c1", routes_to(up.port), admin=True) as plane, aiohttp.ClientSession() as s:
            async with s.get(url(plane, "admin", "/tap")) as tap:
                await _until(lambda: plane.tap.active)
                for i in range(100):
                    async with s.get(url(plane, "outbound", f"/{i}"), headers=HOST) as r:
                        await r.read()
                lines = [json.loads(await asyncio.wait_for(tap.content.readline(), 5)) for _ in range(300)]
                await plane.stop(grace_s=0.5)
                assert await asyncio.wait_for(tap.content.read(), 5) == b""  # the stream ended, cleanly
    assert [e["path"] for e in lines[::3]] == [f"/{i}" for i in range(100)]
    assert all(e["kind"] == "response_end" and e["status"] == 200 for e in lines[2::3])


async def test_a_tap_reader_that_stops_reading_loses_events_and_is_told_how_many():
    async with upstreams(text_handler("a")) as (up,):
        async with data_plane("c1", routes_to(up.port), admin=True) as plane, aiohttp.ClientSession() as s:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader whose socket fills soon
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, plane.admin_address)
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(b"GET /tap HTTP/1.1\r\nHost: admin\r\n\r\n")
            try:
                await _until(lambda: plane.tap.active)
                sub = next(iter(plane.admin._streams))
                sent = 0
                while sub.dropped_total == 0:  # the reader reads nothing meanwhile
                    assert sent < 20_000, "the stream never lost an event"
                    await asyncio.gather(*(_get(s, plane, f"/{sent + i}") for i in range(50)))
                    sent += 50
                lost = sub.dropped_total
                data = b""
                gap = None
                while gap is None:  # the reader catches up: the stream says what it lost
                    data += await asyncio.wait_for(reader.read(1 << 16), 5)
                    gap = re.search(rb'\{"dropped":(\d+),"kind":"dropped"\}\n', data)
                assert int(gap[1]) >= lost > 0
            finally:
                writer.close()


async def _get(s: aiohttp.ClientSession, plane, path: str) -> None:
    async with s.get(url(plane, "outbound", path), headers=HOST) as r:
        assert r.status == 200 and await r.read() == b"a\n"
