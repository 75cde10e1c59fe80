"""The controller's HTTP API (aiohttp): `build_app(controller, tokens)` and `ApiServer`."""
from .app import build_app
from .server import ApiServer, parse_listen

__all__ = ["build_app", "ApiServer", "parse_listen"]
