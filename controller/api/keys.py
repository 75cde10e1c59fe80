"""Typed keys of what the API application holds."""
from __future__ import annotations

import asyncio

from aiohttp import web

from controller.auth import Tokens
from controller.interface import Controller

from .drain import InFlight
from .metrics import ApiMetrics

CONTROLLER = web.AppKey("controller", Controller)
TOKENS = web.AppKey("tokens", Tokens)
METRICS = web.AppKey("metrics", ApiMetrics)
HEARTBEAT = web.AppKey("heartbeat", float)
STOPPING = web.AppKey("stopping", asyncio.Event)  # set when the server starts draining
IN_FLIGHT = web.AppKey("in_flight", InFlight)

ROLE = web.RequestKey("role", str)  # the caller's token role
USER = web.RequestKey("user", str)  # who the audit log records for the caller's writes
