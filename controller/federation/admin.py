"""The controller's client of one proxy's admin port (proxy/admin.py)."""
from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from proxy.config import ProxyConfig

from .layout import proxy_dir

PUSH_TIMEOUT = aiohttp.ClientTimeout(total=2.0)


class AdminError(Exception):
    """The admin port refused (`status` set) or did not answer (`status` None); the message names
    the proxy and the reason."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProxyAdmin:
    def __init__(self, session: aiohttp.ClientSession, address: str, token: str) -> None:
        self.session = session
        self.address = address
        self._auth = {"Authorization": f"Bearer {token}"}

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"

    async def _put(self, path: str, body: dict) -> dict:
        try:
            async with self.session.put(self.url(path), json=body, headers=self._auth, timeout=PUSH_TIMEOUT) as resp:
                if resp.status != 200:
                    raise AdminError(f"PUT {self.url(path)}: {resp.status} {(await resp.text()).strip()}", resp.status)
                return await resp.json()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise AdminError(f"PUT {self.url(path)}: {e or type(e).__name__}") from None

    async def put_config(self, config: ProxyConfig) -> int:
        """Returns the version the proxy acknowledged."""
        return int((await self._put("/config", config.to_dict()))["version"])

    async def reload_tls(self) -> list[str]:
        """POST /tls/reload: the proxy re-reads its --tls-dir; returns the identities that changed."""
        try:
            async with self.session.post(self.url("/tls/reload"), headers=self._auth, timeout=PUSH_TIMEOUT) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise AdminError(f"POST {self.url('/tls/reload')}: {e or type(e).__name__}") from None
        if resp.status != 200:
            raise AdminError(f"POST {self.url('/tls/reload')}: {resp.status} {text.strip()[:500]}", resp.status)
        try:
            return list(json.loads(text).get("changed", []))
        except (ValueError, AttributeError):
            raise AdminError(f"POST {self.url('/tls/reload')}: not a JSON object: {text[:200]!r}", resp.status) from None

    async def tls(self) -> dict:
        """GET /tls: the identities the proxy has loaded ({"enabled": false} without mTLS)."""
        try:
            async with self.session.get(self.url("/tls"), timeout=PUSH_TIMEOUT) as resp:
                if resp.status != 200:
                    raise AdminError(f"GET {self.url('/tls')}: {resp.status}", resp.status)
                return await resp.json()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
            raise AdminError(f"GET {self.url('/tls')}: {e or type(e).__name__}") from None

    async def put_gateways(self, verdicts: dict[str, dict]) -> None:
        """verdicts: gateway "host:port" -> {"alive": bool, "cluster": name, "latency_ms": float | None}"""
        await self._put("/gateways", verdicts)

    async def config_version(self) -> int:
        try:
            async with self.session.get(self.url("/config"), timeout=PUSH_TIMEOUT) as resp:
                if resp.status != 200:
                    raise AdminError(f"GET {self.url('/config')}: {resp.status}", resp.status)
                return int((await resp.json())["version"])
        except (aiohttp.ClientError, TimeoutError, OSError, KeyError, ValueError) as e:
            raise AdminError(f"GET {self.url('/config')}: {e or type(e).__name__}") from None


def running_admins(session: aiohttp.ClientSession, state_dir: Path, clusters: list[dict]) -> dict[str, ProxyAdmin]:
    """The admin ports of the proxies a running controller reports up (Cluster status), with the
    tokens it keeps in the state dir: how a CLI command in another process reaches them."""
    out = {}
    for cluster in clusters:
        name = cluster["metadata"]["name"]
        admin = (cluster.get("status") or {}).get("admin") or {}
        token = proxy_dir(state_dir, name) / "token"
        if admin.get("up") and admin.get("address") and token.exists():
            out[name] = ProxyAdmin(session, admin["address"], token.read_text().strip())
    return out
