"""The in-process Controller: the resource core, the audit log, checks, and (optionally) the
embedded federation's data plane (proxies, workloads, probes, metrics, tap)."""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, AsyncIterator, Protocol

from controller.checks import resource_checks
from controller.errors import Forbidden
from controller.interface import AuditEntry, CheckResult, Controller, GoldenRow, WatchEvent
from controller.kube.backend import KubeBackend
from controller.model import resolve_kind
from controller.resources import ResourceCore
from controller.settings import FederationSettings
from controller.store.atomic import ensure_private_dir
from proxy.events import TapDropped, TapEvent, TapFilter

AUDIT_KEEP = 2000


class DataPlane(Protocol):
    """What the embedded federation's runtime offers the controller (controller/federation/)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def tap(self, flt: TapFilter) -> AsyncIterator[TapEvent | TapDropped]: ...
    async def golden(self, window: str) -> list[GoldenRow]: ...
    async def checks(self) -> list[CheckResult]: ...


class EmbeddedController(Controller):
    def __init__(self, state_dir: Path | None, core: ResourceCore, settings: FederationSettings, *, read_only: bool = False):
        self.state_dir = state_dir
        self.core = core
        self.kube = KubeBackend(core)  # writes to Kubernetes-backed clusters go to their API servers
        self.settings = settings
        self.read_only = read_only
        self.dataplane: DataPlane | None = None
        self._audit: deque[AuditEntry] = deque(maxlen=AUDIT_KEEP)
        self._audit_path = state_dir / "audit.jsonl" if state_dir else None
        if self._audit_path and self._audit_path.exists():
            for line in self._audit_path.read_text().splitlines()[-AUDIT_KEEP:]:
                try:
                    self._audit.append(AuditEntry(**json.loads(line)))
                except (ValueError, TypeError):
                    continue  # a torn last line of an append-only log

    @classmethod
    async def open(cls, state_dir: Path | None, *, loopback_base: str | None = None, read_only: bool = False) -> "EmbeddedController":
        """Load (or create) the federation stored under `state_dir`; None keeps everything in memory."""
        if state_dir is not None:
            ensure_private_dir(Path(state_dir))
        settings = FederationSettings.load_or_create(Path(state_dir) if state_dir else None, loopback_base=loopback_base)
        core = ResourceCore(Path(state_dir) / "store" if state_dir else None, loopback_base=settings.loopback_base,
                            trust_domain=settings.trust_domain)
        core.load()
        return cls(Path(state_dir) if state_dir else None, core, settings, read_only=read_only)

    def attach_dataplane(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    # resources ---------------------------------------------------------------------------
    def _writable(self, what: str) -> None:
        if self.read_only:
            raise Forbidden(f"read-only: {what} refused")

    async def apply(self, manifests, *, cluster=None, namespace=None, user: str = "", source: str = "input") -> list[dict[str, Any]]:
        self._writable("apply")
        objs = await self.kube.apply(manifests, cluster=cluster, namespace=namespace, source=source)
        for o in objs:
            md = o["metadata"]
            self._record(user, "apply", o["kind"], md.get("cluster", ""), md.get("namespace", ""), md["name"], f"resourceVersion {md['resourceVersion']}")
        return objs

    async def get(self, kind, name, *, cluster=None, namespace=None):
        return self.core.get(kind, name, cluster, namespace)

    async def list(self, kind, *, cluster=None, namespace=None):
        return self.core.list(kind, cluster, namespace)

    async def delete(self, kind, name, *, cluster=None, namespace=None, user: str = ""):
        self._writable("delete")
        obj = await self.kube.delete(kind, name, cluster=cluster, namespace=namespace)
        md = obj["metadata"]
        self._record(user, "delete", obj["kind"], md.get("cluster", ""), md.get("namespace", ""), md["name"])
        return obj

    async def watch(self, kinds=None, *, cluster=None, since=None) -> AsyncIterator[WatchEvent]:
        names = {resolve_kind(k).name for k in kinds} if kinds else None
        initial = None
        if since is None:
            initial = [o for o in self.core.all_objects() if names is None or o["kind"] in names]
        async for event in self.core.hub.stream(names, cluster, initial, since):
            yield event

    # traffic -----------------------------------------------------------------------------
    async def tap(self, flt: TapFilter) -> AsyncIterator[TapEvent | TapDropped]:
        if self.dataplane is None:
            await asyncio.Event().wait()  # nothing flows without a data plane: wait until cancelled
            return
        async for e in self.dataplane.tap(flt):
            yield e

    async def golden(self, window: str = "10s") -> list[GoldenRow]:
        return await self.dataplane.golden(window) if self.dataplane else []

    # operations --------------------------------------------------------------------------
    async def checks(self) -> list[CheckResult]:
        out = resource_checks(self.core.state, self.core.status, self.core.imports)
        out += self.kube.checks()
        if self.dataplane is not None:
            out += await self.dataplane.checks()
        return out

    async def audit(self, limit: int = 200) -> list[AuditEntry]:
        return list(self._audit)[-limit:]

    def _record(self, user: str, action: str, kind: str, cluster: str, namespace: str, name: str, detail: str = "") -> None:
        entry = AuditEntry(time.time(), user or os.environ.get("USER", "local"), action, kind, cluster, namespace, name, detail)
        self._audit.append(entry)
        if self._audit_path:
            fd = os.open(self._audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (json.dumps(entry.to_dict()) + "\n").encode())
            except OSError:
                pass  # the audit trail is best effort; the write itself already succeeded
            finally:
                os.close(fd)

    async def close(self) -> None:
        await self.kube.stop()
        if self.dataplane is not None:
            await self.dataplane.stop()
