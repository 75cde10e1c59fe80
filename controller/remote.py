"""RemoteController: the Controller interface over the controller's HTTP API.

Error bodies come back as the MeshError subclasses the server raised; a controller that cannot be
reached, or a connection that dies, raises Unavailable. Watch and tap are async iterators over the
NDJSON streams; they skip heartbeats, and raise Unavailable when the stream goes quiet for longer
than `stream_idle_timeout` or the server ends it (a controller that is stopping), so a caller has
one signal to reconnect on (a watch resumes with `since=` the last resourceVersion it saw).
"""
from __future__ import annotations

import asyncio
import json
import ssl as ssl_module
from contextlib import aclosing
from dataclasses import fields
from typing import Any, AsyncIterator, TypeVar
from urllib.parse import quote

import aiohttp

from controller.api.wire import (
    HEARTBEAT_BOOKMARK, HEARTBEAT_SECONDS, PREFIX, TAP_ERROR_KIND, TAP_HEARTBEAT_KIND, USER_HEADER, WATCH_ERROR,
)
from controller.errors import MeshError, Unavailable, error_from_dict
from controller.interface import AuditEntry, CheckResult, Controller, GoldenRow, WatchEvent
from proxy.events import TapDropped, TapEvent, TapFilter

T = TypeVar("T")


def _from_dict(cls: type[T], d: dict[str, Any]) -> T:
    """Build a dataclass from a wire dict, ignoring fields a newer server may add."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in d.items() if k in names})


class RemoteController(Controller):
    def __init__(self, url: str, token: str, *, ssl: ssl_module.SSLContext | None = None, user: str = "",
                 timeout: float = 30.0, stream_idle_timeout: float = 3 * HEARTBEAT_SECONDS):
        self.url = url.rstrip("/")
        self.token = token
        self.ssl = ssl
        self.user = user  # default audit user for writes that name none
        self.timeout = timeout
        self.stream_idle_timeout = stream_idle_timeout
        self.role = ""
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    async def connect(cls, url: str, token: str, **kwargs: Any) -> "RemoteController":
        """A client that has checked the controller answers and the token is valid."""
        remote = cls(url, token, **kwargs)
        try:
            who = await remote.whoami()
        except BaseException:
            await remote.close()
            raise
        remote.role = who["role"]
        remote.read_only = bool(who.get("readOnly"))
        return remote

    # transport ---------------------------------------------------------------------------
    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self.token}"},
                connector=aiohttp.TCPConnector(ssl=self.ssl if self.ssl is not None else True),
            )
        return self._session

    def _headers(self, user: str) -> dict[str, str]:
        who = user or self.user
        return {USER_HEADER: who} if who else {}

    def _error(self, status: int, body: bytes) -> MeshError:
        try:
            d = json.loads(body)
        except ValueError:
            d = None
        if isinstance(d, dict) and d.get("kind") == "Status":
            err = error_from_dict(d)
            err.status = int(d.get("code") or status)
            return err
        text = body.decode(errors="replace").strip()[:200]
        err = MeshError(f"the controller at {self.url} answered HTTP {status}: {text}")
        err.status = status
        return err

    def _unreachable(self, e: BaseException) -> Unavailable:
        if isinstance(e, aiohttp.ClientConnectorCertificateError):
            return Unavailable(f"cannot reach the controller at {self.url}: its TLS certificate is not trusted ({e.certificate_error})")
        if isinstance(e, aiohttp.ClientConnectorError):
            return Unavailable(f"cannot reach the controller at {self.url}: {e.os_error.strerror or e.os_error}")
        if isinstance(e, asyncio.TimeoutError):
            return Unavailable(f"the controller at {self.url} did not answer in time")
        return Unavailable(f"lost the connection to the controller at {self.url}: {e or type(e).__name__}")

    async def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                    body: dict[str, Any] | None = None, user: str = "") -> Any:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            async with self._client().request(method, f"{self.url}{PREFIX}{path}", params=query, json=body,
                                               headers=self._headers(user),
                                               timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                raw = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise self._unreachable(e) from None
        if resp.status >= 400:
            raise self._error(resp.status, raw)
        return json.loads(raw)

    async def _stream(self, path: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        query = {k: str(v) for k, v in params.items() if v is not None and v != ""}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.stream_idle_timeout)
        try:
            async with self._client().get(f"{self.url}{PREFIX}{path}", params=query, timeout=timeout) as resp:
                if resp.status >= 400:
                    raise self._error(resp.status, await resp.read())
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
        except asyncio.TimeoutError:
            raise Unavailable(f"no data from the controller at {self.url} for {self.stream_idle_timeout:g}s; the connection looks dead") from None
        except aiohttp.ClientError as e:
            raise self._unreachable(e) from None
        raise Unavailable(f"the controller at {self.url} ended the stream (it is stopping or restarting)")

    async def whoami(self) -> dict[str, Any]:
        return await self._call("GET", "/whoami")

    # resources ---------------------------------------------------------------------------
    async def apply(self, manifests: str | list[dict[str, Any]], *, cluster: str | None = None,
                    namespace: str | None = None, user: str = "", source: str = "input") -> list[dict[str, Any]]:
        body = {"manifests": manifests, "cluster": cluster, "namespace": namespace, "source": source}
        return (await self._call("POST", "/apply", body=body, user=user))["items"]

    async def get(self, kind: str, name: str, *, cluster: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        return await self._call("GET", f"/resources/{quote(kind, safe='')}/{quote(name, safe='')}", params={"cluster": cluster, "namespace": namespace})

    async def list(self, kind: str, *, cluster: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        return (await self._call("GET", f"/resources/{quote(kind, safe='')}", params={"cluster": cluster, "namespace": namespace}))["items"]

    async def delete(self, kind: str, name: str, *, cluster: str | None = None, namespace: str | None = None,
                     user: str = "") -> dict[str, Any]:
        return await self._call("DELETE", f"/resources/{quote(kind, safe='')}/{quote(name, safe='')}", params={"cluster": cluster, "namespace": namespace}, user=user)

    async def watch(self, kinds: list[str] | None = None, *, cluster: str | None = None,
                    since: int | None = None) -> AsyncIterator[WatchEvent]:
        params = {"kinds": ",".join(kinds) if kinds else None, "cluster": cluster, "since": since}
        async with aclosing(self._stream("/watch", params)) as lines:
            async for d in lines:
                if d.get("type") == WATCH_ERROR:
                    raise error_from_dict(d.get("object") or {})
                if d.get("type") == "BOOKMARK" and d["object"].get("metadata", {}).get("name") == HEARTBEAT_BOOKMARK:
                    continue
                yield WatchEvent(d["type"], d["object"])

    # traffic -----------------------------------------------------------------------------
    async def tap(self, flt: TapFilter) -> AsyncIterator[TapEvent | TapDropped]:
        async with aclosing(self._stream("/tap", flt.to_query())) as lines:
            async for d in lines:
                kind = d.get("kind")
                if kind == TAP_HEARTBEAT_KIND:
                    continue
                if kind == TAP_ERROR_KIND:
                    raise error_from_dict(d.get("status") or {})
                yield TapDropped(int(d["dropped"])) if kind == "dropped" else _from_dict(TapEvent, d)

    async def golden(self, window: str = "10s") -> list[GoldenRow]:
        return [_from_dict(GoldenRow, d) for d in (await self._call("GET", "/golden", params={"window": window}))["items"]]

    # operations --------------------------------------------------------------------------
    async def checks(self) -> list[CheckResult]:
        return [_from_dict(CheckResult, d) for d in (await self._call("GET", "/checks"))["items"]]

    async def audit(self, limit: int = 200) -> list[AuditEntry]:
        return [_from_dict(AuditEntry, d) for d in (await self._call("GET", "/audit", params={"limit": limit}))["items"]]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
