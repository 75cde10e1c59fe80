"""The controller's client of one proxy's admin port (proxy/admin.py)."""
from __future__ import annotations

import aiohttp

from proxy.config import ProxyConfig

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
