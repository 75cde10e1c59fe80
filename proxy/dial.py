"""Opening a connection to an upstream: TCP or TLS, bounded in time, with failures told in one
line that names the address (for 502 bodies, tap and logs)."""
from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TypeVar

P = TypeVar("P", bound=asyncio.BaseProtocol)


async def dial(factory: Callable[[], P], host: str, port: int, *, ctx: ssl.SSLContext | None, server_name: str,
               timeout_s: float, alpn: str = "", error: type[Exception] = ConnectionError
               ) -> tuple[asyncio.Transport, P]:
    """A connection to host:port made by `factory`, over TLS with `ctx` (checking the server as
    `server_name`, else `host`, and the agreed ALPN protocol when `alpn` is given). Raises
    `error` with the reason."""
    address = f"{host}:{port}"
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(factory, host, port, ssl=ctx,
                                   server_hostname=(server_name or host) if ctx is not None else None),
            timeout_s)
    except asyncio.TimeoutError:
        raise error(f"connect to {address} timed out after {timeout_s:g} s") from None
    except ssl.SSLError as exc:
        raise error(f"TLS handshake with {address} failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise error(f"connect to {address} failed: {exc.strerror or exc}") from None
    if ctx is not None and alpn:
        agreed = transport.get_extra_info("ssl_object").selected_alpn_protocol()
        if agreed != alpn:
            transport.abort()
            raise error(f"{address} did not agree to {alpn} over TLS (ALPN {agreed or 'none'})")
    return transport, protocol  # type: ignore[return-value]
