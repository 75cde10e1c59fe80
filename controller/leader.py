"""Lease-based leader election (coordination.k8s.io/v1), as client-go's leaderelection does it.

Every `renew_period` each candidate reads the Lease in a worker thread (the official client is
synchronous):
- absent -> create it naming itself (409: another candidate was first);
- held by another whose record has not changed for `leaseDurationSeconds` of *our* clock (the
  time we first saw that record, never the holder's timestamps, so clock skew does not matter)
  -> take it over; otherwise stand by;
- held by itself, or released (no holder) -> renew/acquire.
Every write is a replace carrying the resourceVersion read, so two candidates never both win.
A leader that cannot renew for `renew_deadline` (< the lease duration) stops being leader
before anyone else may take over. `stop()` releases the Lease (holder cleared, duration 1 s) so a
standby takes over at once; `stop(release=False)` just stops, as a crash would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from controller.kube.rest import KubeRest

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def default_identity() -> str:
    """The pod's name in a pod (its hostname), plus the pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class LeaderOptions:
    namespace: str = "meshtui-system"
    name: str = "meshtui-controller"
    kubeconfig: str | None = None  # None: the pod's service account inside a pod, else $KUBECONFIG
    context: str | None = None
    lease_duration: float = 10.0
    renew_period: float = 2.0
    renew_deadline: float | None = None  # default: two thirds of the lease duration
    identity: str = field(default_factory=default_identity)

    def __post_init__(self) -> None:
        if not 0 < self.renew_period < self.lease_duration:
            raise ValueError(f"renew period {self.renew_period}s must be positive and shorter than the lease ({self.lease_duration}s)")
        if self.renew_deadline is not None and not self.renew_period <= self.renew_deadline < self.lease_duration:
            raise ValueError("the renew deadline must lie between the renew period and the lease duration")

    @property
    def deadline(self) -> float:
        return self.renew_deadline if self.renew_deadline is not None else self.lease_duration * 2 / 3


def micro_time() -> str:
    """Now as a Kubernetes MicroTime: RFC 3339 with microseconds, UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, rest: "KubeRest", options: LeaderOptions, *, owns_client: bool = False):
        self.rest = rest
        self._owns_client = owns_client
        self.options = options
        self.identity = options.identity
        self._leader = False
        self._last_renew = 0.0  # monotonic time of our last successful acquire/renew
        self._observed: tuple[Any, ...] | None = None  # the other holder's record, as last seen
        self._observed_at = 0.0
        self._listeners: list[Callable[[bool], None]] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leader-election")
        self._task: asyncio.Task[None] | None = None
        self._error = ""

    @classmethod
    def from_options(cls, options: LeaderOptions) -> "LeaderElector":
        from controller.kube.client import in_pod, new_api_client, new_in_cluster_api_client
        from controller.kube.rest import KubeRest

        if options.kubeconfig is None and options.context is None and in_pod():
            api = new_in_cluster_api_client()
        else:
            api = new_api_client(options.kubeconfig, options.context)
        timeout = max(0.5, options.deadline / 2)
        return cls(KubeRest(api, connect_timeout=timeout, read_timeout=timeout), options, owns_client=True)

    @property
    def is_leader(self) -> bool:
        """True only while the last renewal is younger than the renew deadline."""
        self._expire()
        return self._leader

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """`listener(is_leader)` on the event loop whenever leadership is gained or lost."""
        self._listeners.append(listener)

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"leader election {self.options.name}")

    async def stop(self, *, release: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        was_leader = self._leader
        self._set_leader(False)
        if release and was_leader:
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._release)
            except Exception as e:  # the lease expires on its own
                log.warning("could not release the lease %s: %s", self._lease_name, e)
        self._executor.shutdown(wait=False)
        if self._owns_client:
            self.rest.api_client.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started, sent = loop.time(), time.monotonic()
            try:
                leading = await loop.run_in_executor(self._executor, self._try_acquire_or_renew)
            except Exception as e:
                from controller.kube.rest import describe_error

                error = describe_error(e)
                if error != self._error:  # once per distinct trouble, e.g. a namespace that does not exist
                    log.warning("lease %s: %s", self._lease_name, error)
                self._error, leading = error, False
            else:
                self._error = ""
            if leading:
                self._last_renew = sent  # the lease counts from when the renewal was sent
                self._set_leader(True)
            else:
                self._expire()
            await asyncio.sleep(max(0.0, self.options.renew_period - (loop.time() - started)))

    def _expire(self) -> None:
        if self._leader and time.monotonic() - self._last_renew > self.options.deadline:
            self._set_leader(False)

    def _set_leader(self, leading: bool) -> None:
        if leading == self._leader:
            return
        self._leader = leading
        log.info("%s %s leadership of lease %s", self.identity, "acquired" if leading else "lost", self._lease_name)
        for listener in self._listeners:
            listener(leading)

    @property
    def _lease_name(self) -> str:
        return f"{self.options.namespace}/{self.options.name}"

    # in the worker thread ----------------------------------------------------------------
    def _try_acquire_or_renew(self) -> bool:
        from kubernetes.client.exceptions import ApiException

        from controller.kube.resources import LEASES

        o = self.options
        now = time.monotonic()
        try:
            lease = self.rest.get(LEASES, o.namespace, o.name)
        except ApiException as e:
            if e.status != 404:
                raise
            try:
                self.rest.create(LEASES, self._lease({}, acquired=True))
            except ApiException as e:
                if e.status == 409:
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity:
            record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"), spec.get("leaseTransitions"))
            if record != self._observed:
                self._observed, self._observed_at = record, now
            duration = spec.get("leaseDurationSeconds") or math.ceil(o.lease_duration)
            if now < self._observed_at + duration:
                return False
            log.info("lease %s: %s stopped renewing %.1fs ago; taking over", self._lease_name, holder, now - self._observed_at)
        updated = {**lease, "spec": self._lease(spec, acquired=holder != self.identity)["spec"]}
        try:
            self.rest.replace(LEASES, updated)
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    def _lease(self, spec: Obj, *, acquired: bool) -> Obj:
        o, stamp = self.options, micro_time()
        transitions = spec.get("leaseTransitions") or 0
        new_spec = {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": math.ceil(o.lease_duration),
            "renewTime": stamp,
            "acquireTime": stamp if acquired else spec.get("acquireTime", stamp),
            "leaseTransitions": transitions + 1 if acquired and spec.get("holderIdentity") else transitions,
        }
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": o.name, "namespace": o.namespace},
            "spec": new_spec,
        }

    def _release(self) -> None:
        from controller.kube.resources import LEASES

        lease = self.rest.get(LEASES, self.options.namespace, self.options.name)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        stamp = micro_time()
        released = {k: v for k, v in spec.items() if k != "holderIdentity"}
        released.update(leaseDurationSeconds=1, renewTime=stamp, acquireTime=stamp)
        self.rest.replace(LEASES, {**lease, "spec": released})
