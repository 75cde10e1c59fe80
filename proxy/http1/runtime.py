"""Process-level helpers for the programs that run an HTTP server: listen
addresses and the event loop."""
from __future__ import annotations

import asyncio


def split_hostport(value: str) -> tuple[str, int]:
    """'127.0.0.1:8080' or '[::1]:8080' -> (host, port); ValueError naming the value."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def install_uvloop() -> bool:
    """Use uvloop when it is installed; the stdlib loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
