"""The admin port of a proxy process (served by proxy.http1, as the proxies are: no
second HTTP stack in the process) and the live configuration it changes.

    GET  /metrics     Prometheus text
    GET  /ready       200 while serving, 503 while stopping
    GET  /live        200
    GET  /config      the current ProxyConfig as a dict (its `version` inside)
    PUT  /config      a new ProxyConfig (bearer token): validated, swapped atomically, then saved
    GET  /tap         NDJSON stream of tap events; query = TapFilter.to_query(), and
                      format=compact for proxy/tap.py CompactEncoder's lines (the controller's)
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from proxy.config import ProxyConfig
from proxy.events import TapFilter
from proxy.http1.server import Request, Response
from proxy.http1.wire import Headers
from proxy.metrics import CONTENT_TYPE as PROMETHEUS_TEXT
from proxy.metrics import Metrics
from proxy.routing.health import EndpointHealth
from proxy.routing.table import RouteTable
from proxy.tap import CompactEncoder, TapHub, TapSubscription, ndjson
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


class AdminRefusal(Exception):
    """An admin request answered with an error status and a text body."""

    def __init__(self, status: int, message: str, headers: Headers = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


class Admin:
    """The admin port's handler, on the data plane's own HTTP engine (proxy.http1.server):
    `HttpServer(admin)`. `close()` ends the tap streams (before the server shuts down)."""

    def __init__(self, *, live: LiveConfig, health: EndpointHealth, metrics: Metrics, tap: TapHub,
                 token: str, identities: ProxyIdentities | None = None) -> None:
        self.live = live
        self.identities = identities
        self.health = health
        self.metrics = metrics
        self.tap = tap
        self.token = token
        self.stopping = False
        self._streams: set[TapSubscription] = set()
        get, put, post = b"GET", b"PUT", b"POST"
        self._routes: dict[bytes, dict[bytes, Callable[[Request, Response, bytes], Awaitable[None]]]] = {
            b"/metrics": {get: self.get_metrics},
            b"/ready": {get: self.get_ready},
            b"/live": {get: self.get_live},
            b"/config": {get: self.get_config, put: self.put_config},
            b"/tap": {get: self.get_tap},
            b"/endpoints": {get: self.get_endpoints},
            b"/gateways": {put: self.put_gateways},
            b"/tls": {get: self.get_tls},
            b"/tls/reload": {post: self.post_tls_reload},
        }

    async def __call__(self, req: Request, resp: Response) -> None:
        path, _, query = req.target.partition(b"?")
        methods = self._routes.get(path)
        try:
            if methods is None:
                raise AdminRefusal(404, f"no admin resource at {path.decode('latin-1')}")
            handler = methods.get(b"GET" if req.method == b"HEAD" else req.method)
            if handler is None:
                allowed = ", ".join(sorted(m.decode() for m in methods))
                raise AdminRefusal(405, f"{req.method.decode('latin-1')} not allowed on {path.decode('latin-1')} "
                                        f"(allowed: {allowed})", [(b"allow", allowed.encode())])
            await handler(req, resp, query)
        except AdminRefusal as exc:
            resp.send(exc.status, [*exc.headers, TEXT], exc.message.encode() + b"\n")

    def close(self) -> None:
        """End the tap streams: their subscribers see the end of the response."""
        for sub in list(self._streams):
            sub.close()

    def _authorize(self, req: Request) -> None:
        if not self.token:
            raise AdminRefusal(403, "writes are disabled: the proxy was started without --admin-token")
        scheme, _, given = (req.header(b"authorization") or b"").partition(b" ")
        if scheme.lower() != b"bearer" or not given:
            raise AdminRefusal(401, "missing bearer token (Authorization: Bearer <admin token>)",
                               [(b"www-authenticate", b"Bearer")])
        if not hmac.compare_digest(given.strip(), self.token.encode()):
            raise AdminRefusal(403, "wrong admin token")

    @staticmethod
    async def _json(req: Request) -> Any:
        try:
            body = await req.body.read_all(MAX_BODY)
        except ValueError:
            raise AdminRefusal(413, f"request body larger than {MAX_BODY} bytes") from None
        try:
            return json.loads(body)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise AdminRefusal(400, f"body is not valid JSON: {exc}") from None

    async def get_metrics(self, req: Request, resp: Response, query: bytes) -> None:
        resp.send(200, [(b"content-type", PROMETHEUS_TEXT.encode())], self.metrics.render().encode())

    async def get_ready(self, req: Request, resp: Response, query: bytes) -> None:
        if self.stopping:
            resp.send(503, [TEXT], b"stopping\n")
        else:
            resp.send(200, [TEXT], f"ready (config version {self.live.config.version})\n".encode())

    async def get_live(self, req: Request, resp: Response, query: bytes) -> None:
        resp.send(200, [TEXT], b"live\n")

    async def get_config(self, req: Request, resp: Response, query: bytes) -> None:
        _send_json(resp, self.live.config.to_dict())

    async def put_config(self, req: Request, resp: Response, query: bytes) -> None:
        self._authorize(req)
        data = await self._json(req)
        try:
            config = self.live.apply(data)
        except ConfigError as exc:
            raise AdminRefusal(400, str(exc)) from None
        log.info("config version %d applied (%d routes, %d gateway rules)",
                 config.version, len(config.routes), len(config.gateway))
        _send_json(resp, {"version": config.version})

    async def get_endpoints(self, req: Request, resp: Response, query: bytes) -> None:
        _send_json(resp, self.health.snapshot())

    async def put_gateways(self, req: Request, resp: Response, query: bytes) -> None:
        self._authorize(req)
        data = await self._json(req)
        if not isinstance(data, dict):
            raise AdminRefusal(400, 'expected {"host:port": alive, ...}')
        verdicts = []
        for address, verdict in data.items():
            if isinstance(verdict, bool):
                verdicts.append((address, verdict, "", None))
            elif isinstance(verdict, dict) and isinstance(verdict.get("alive"), bool):
                latency = verdict.get("latency_ms")
                if latency is not None and not isinstance(latency, (int, float)):
                    raise AdminRefusal(400, f"{address}: latency_ms must be a number, got {latency!r}")
                verdicts.append((address, verdict["alive"], str(verdict.get("cluster", "")), latency))
            else:
                raise AdminRefusal(400, f"{address}: expected true/false or {{\"alive\": bool, ...}}, got {verdict!r}")
        for address, alive, cluster, latency in verdicts:
            self.health.set_gateway_alive(address, alive)
            if cluster:
                self.metrics.set_gateway(cluster, alive, latency)
        _send_json(resp, {"updated": len(verdicts)})

    async def get_tls(self, req: Request, resp: Response, query: bytes) -> None:
        if self.identities is None:
            _send_json(resp, {"enabled": False})
        else:
            _send_json(resp, {"enabled": True, **self.identities.describe()})

    async def post_tls_reload(self, req: Request, resp: Response, query: bytes) -> None:
        self._authorize(req)
        if self.identities is None:
            raise AdminRefusal(400, "this proxy runs without --tls-dir: nothing to reload")
        changed = self.identities.reload()
        described = self.identities.describe()
        errors = {name: i["error"] for name, i in described["identities"].items() if "error" in i}
        if errors:
            log.error("TLS reload: %s", "; ".join(f"{n}: {e}" for n, e in errors.items()))
            _send_json(resp, {"enabled": True, "changed": changed, **described}, 500)
            return
        if changed:
            log.info("TLS reload: %s", ", ".join(changed))
        _send_json(resp, {"enabled": True, "changed": changed, **described})

    async def get_tap(self, req: Request, resp: Response, query: bytes) -> None:
        """NDJSON, one event a line (the fields of TapEvent.to_dict()), until the subscriber
        leaves (or the proxy stops). Events leave in batches, TAP_FLUSH_S after the first
        of each: the proxy pays one wakeup, one encoding pass and one write per batch, not
        per event. While the subscriber's socket does not take more (paused), events are
        lost and counted, not queued: a `dropped` line says how many."""
        q = dict(parse_qsl(query.decode("latin-1")))
        form = q.pop("format", "json")
        if form not in TAP_FORMATS:
            raise AdminRefusal(400, f"bad tap format {form!r}: one of {', '.join(TAP_FORMATS)}")
        encode = CompactEncoder() if form == "compact" else ndjson
        try:
            flt = TapFilter.from_query(q)
            sub = self.tap.subscribe(flt, buffer=TAP_BUFFER)
        except ValueError as exc:
            raise AdminRefusal(400, f"bad tap filter: {exc}") from None
        self._streams.add(sub)
        resp.start(200, [(b"content-type", b"application/x-ndjson")])
        resp.flush_head()
        try:
            while await sub.wait():
                await asyncio.sleep(TAP_FLUSH_S)  # let the batch gather
                resp.write(encode(sub.take()))
                if resp.paused:
                    sub.paused = True
                    await resp.drain()
                    sub.paused = False
            resp.end()
        except ConnectionError:
            pass  # the subscriber left
        finally:
            self._streams.discard(sub)
            sub.close()


TEXT = (b"content-type", b"text/plain; charset=utf-8")
MAX_BODY = 64 * 1024 * 1024  # PUT bodies (a config)
TAP_FLUSH_S = 0.025
TAP_BUFFER = 10_000  # requests (with the events riding on them) a stream may hold between two flushes
TAP_FORMATS = ("json", "compact")  # one TapEvent dict a line, or proxy/tap.py CompactEncoder's lines


def _send_json(resp: Response, data: Any, status: int = 200) -> None:
    resp.send(status, [(b"content-type", b"application/json; charset=utf-8")], json.dumps(data).encode())
