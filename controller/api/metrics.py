"""The controller's own Prometheus metrics: API requests by route and code, resources by kind."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from controller.interface import Controller
from controller.model import KINDS

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("meshtui_api_requests", "API requests served", ["route", "method", "code"], registry=self.registry)
        self.resources = Gauge("meshtui_resources", "Resources held by the controller", ["kind"], registry=self.registry)

    def observe(self, route: str, method: str, code: int) -> None:
        self.requests.labels(route, method, str(code)).inc()

    async def render(self, controller: Controller) -> bytes:
        for kind in KINDS:
            self.resources.labels(kind.name).set(len(await controller.list(kind.name)))
        return generate_latest(self.registry)
