"""The admin port of a proxy process (aiohttp: not the hot path) and the live
configuration it changes.

    GET  /metrics     Prometheus text
    GET  /ready       200 while serving, 503 while stopping
    GET  /live        200
    GET  /config      the current ProxyConfig as a dict (its `version` inside)
    PUT  /config      a new ProxyConfig (bearer token): validated, swapped atomically, then saved
    GET  /tap         NDJSON stream of tap events; query = TapFilter.to_query()
    GET  /endpoints   endpoint health
    PUT  /gateways    probe verdicts {"host:port": alive} or {"host:port": {"alive", "cluster", "latency_ms"}}
                      (bearer token)
    GET  /tls         the mTLS identities in force: trust anchors, each leaf (identity, serial, expiry,
                      the anchor it chains to), gateway handshakes; {"enabled": false} without --tls-dir
    POST /tls/reload  re-read the --tls-dir (bearer token): after a renewal or a rotation step; answers
                      like GET /tls plus "changed" (the identities reloaded); 500 naming the file when
                      one cannot be loaded (the previous contexts stay in force)
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.config import ProxyConfig
from proxy.events import TapFilter
from proxy.metrics import CONTENT_TYPE as PROMETHEUS_TEXT
from proxy.metrics import Metrics
from proxy.routing.health import EndpointHealth
from proxy.routing.table import RouteTable
from proxy.tap import TapHub
from proxy.tls import ProxyIdentities

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration the proxy refuses; the message says what and where."""


class LiveConfig:
    """The configuration in force and the route table built from it.

    `table` is replaced whole, never changed in place: a request holds the
    table it started with. With a `path`, every accepted config is written
    there (atomically: temp file, fsync, rename) right after it is applied,
    and read back at start, so a restarted proxy serves its last routes even
    when the controller is down.
    """

    def __init__(self, cluster: str, health: EndpointHealth, path: str | os.PathLike[str] = "") -> None:
        self.cluster = cluster
        self.health = health
        self.path = Path(path) if path else None
        self.config = ProxyConfig(cluster=cluster, cluster_key="")
        self.table = RouteTable(self.config, health)
        self._unsaved = False
        self._saver: asyncio.Task[None] | None = None

    def parse(self, data: Any) -> ProxyConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        try:
            config = ProxyConfig.from_dict(data)
        except KeyError as exc:
            raise ConfigError(f"config: missing field {exc}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"config: {exc}") from None
        if config.cluster != self.cluster:
            raise ConfigError(f"config is for cluster {config.cluster!r}; this proxy serves {self.cluster!r}")
        return config

    def apply(self, data: Any, *, persist: bool = True) -> ProxyConfig:
        """Validate and swap in a new config; with `persist` (inside the event loop),
        save it in the background: a push is not held up by the disk."""
        config = self.parse(data)
        try:
            table = RouteTable(config, self.health)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ConfigError(f"config: {exc}") from None
        self.config, self.table = config, table
        if persist and self.path is not None:
            self._unsaved = True
            if self._saver is None or self._saver.done():
                self._saver = asyncio.get_running_loop().create_task(self._save())
        return config

    async def _save(self) -> None:
        """Write the latest config until none is left unsaved; one writer at a time,
        so an older config never lands after a newer one."""
        while self._unsaved:
            self._unsaved = False
            config = self.config
            try:
                await asyncio.to_thread(self._write, config)
            except OSError as exc:
                log.error("config version %d applied but not saved to %s: %s", config.version, self.path, exc)

    async def flush(self) -> None:
        """Wait until the config in force is on disk (before the process exits)."""
        if self._saver is not None:
            await self._saver

    def load(self) -> bool:
        """Start from the config file if there is one; False when absent."""
        if self.path is None or not self.path.exists():
            return False
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{self.path}: cannot read the saved config: {exc}") from None
        try:
            self.apply(data, persist=False)
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: {exc}") from None
        return True

    def _write(self, config: ProxyConfig) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(config.to_dict(), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class Admin:
    def __init__(self, *, live: LiveConfig, health: EndpointHealth, metrics: Metrics, tap: TapHub,
                 token: str, identities: ProxyIdentities | None = None) -> None:
        self.live = live
        self.identities = identities
        self.health = health
        self.metrics = metrics
        self.tap = tap
        self.token = token
        self.stopping = False

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes([
            web.get("/metrics", self.get_metrics),
            web.get("/ready", self.get_ready),
            web.get("/live", self.get_live),
            web.get("/config", self.get_config),
            web.put("/config", self.put_config),
            web.get("/tap", self.get_tap),
            web.get("/endpoints", self.get_endpoints),
            web.put("/gateways", self.put_gateways),
            web.get("/tls", self.get_tls),
            web.post("/tls/reload", self.post_tls_reload),
        ])
        return app

    def _authorize(self, request: web.Request) -> None:
        if not self.token:
            raise _text(403, "writes are disabled: the proxy was started without --admin-token")
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise _text(401, "missing bearer token (Authorization: Bearer <admin token>)",
                        {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise _text(403, "wrong admin token")

    async def _json(self, request: web.Request) -> Any:
        try:
            return await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _text(400, f"body is not valid JSON: {exc}") from None

    async def get_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render().encode(), headers={"Content-Type": PROMETHEUS_TEXT})

    async def get_ready(self, request: web.Request) -> web.Response:
        if self.stopping:
            return web.Response(status=503, text="stopping\n")
        return web.Response(text=f"ready (config version {self.live.config.version})\n")

    async def get_live(self, request: web.Request) -> web.Response:
        return web.Response(text="live\n")

    async def get_config(self, request: web.Request) -> web.Response:
        return web.json_response(self.live.config.to_dict())

    async def put_config(self, request: web.Request) -> web.Response:
        self._authorize(request)
        data = await self._json(request)
        try:
            config = self.live.apply(data)
        except ConfigError as exc:
            raise _text(400, str(exc)) from None
        log.info("config version %d applied (%d routes, %d gateway rules)",
                 config.version, len(config.routes), len(config.gateway))
        return web.json_response({"version": config.version})

    async def get_endpoints(self, request: web.Request) -> web.Response:
        return web.json_response(self.health.snapshot())

    async def put_gateways(self, request: web.Request) -> web.Response:
        self._authorize(request)
        data = await self._json(request)
        if not isinstance(data, dict):
            raise _text(400, 'expected {"host:port": alive, ...}')
        verdicts = []
        for address, verdict in data.items():
            if isinstance(verdict, bool):
                verdicts.append((address, verdict, "", None))
            elif isinstance(verdict, dict) and isinstance(verdict.get("alive"), bool):
                latency = verdict.get("latency_ms")
                if latency is not None and not isinstance(latency, (int, float)):
                    raise _text(400, f"{address}: latency_ms must be a number, got {latency!r}")
                verdicts.append((address, verdict["alive"], str(verdict.get("cluster", "")), latency))
            else:
                raise _text(400, f"{address}: expected true/false or {{\"alive\": bool, ...}}, got {verdict!r}")
        for address, alive, cluster, latency in verdicts:
            self.health.set_gateway_alive(address, alive)
            if cluster:
                self.metrics.set_gateway(cluster, alive, latency)
        return web.json_response({"updated": len(verdicts)})

    async def get_tls(self, request: web.Request) -> web.Response:
        if self.identities is None:
            return web.json_response({"enabled": False})
        return web.json_response({"enabled": True, **self.identities.describe()})

    async def post_tls_reload(self, request: web.Request) -> web.Response:
        self._authorize(request)
        if self.identities is None:
            raise _text(400, "this proxy runs without --tls-dir: nothing to reload")
        changed = self.identities.reload()
        described = self.identities.describe()
        errors = {name: i["error"] for name, i in described["identities"].items() if "error" in i}
        if errors:
            log.error("TLS reload: %s", "; ".join(f"{n}: {e}" for n, e in errors.items()))
            return web.json_response({"enabled": True, "changed": changed, **described}, status=500)
        if changed:
            log.info("TLS reload: %s", ", ".join(changed))
        return web.json_response({"enabled": True, "changed": changed, **described})

    async def get_tap(self, request: web.Request) -> web.StreamResponse:
        try:
            sub = self.tap.subscribe(TapFilter.from_query(dict(request.query)))
        except ValueError as exc:
            raise _text(400, f"bad tap filter: {exc}") from None
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        try:
            await resp.prepare(request)
            async for event in sub:
                await resp.write(json.dumps(event.to_dict()).encode() + b"\n")
        except (ConnectionError, RuntimeError):
            pass  # the subscriber left
        finally:
            sub.close()
        return resp


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
}


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> web.HTTPException:
    return _ERRORS[status](text=message + "\n", headers=headers)
