"""Lease-based leader election against a loopback API server: one leader at a time, a release
hands over at once, a crash hands over within the lease duration; two controllers following the
same cluster, and only the leader writes ServiceImports and statuses."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import AsyncIterator

import pytest
import yaml

from controller.errors import Conflict
from controller.kube.writer import WRITTEN_BY_ANNOTATION
from controller.leader import LeaderElector, LeaderOptions
from tests.kube.helpers import eventually
from tests.kube.kubefed import FAST, WiredController, export, kube_import, namespace, service
from tests.kubeapi import KubeAPIServer

LEASE, RENEW = 2.0, 0.25


def options(kubeconfig: Path, identity: str) -> LeaderOptions:
    return LeaderOptions(namespace="kube-system", name="meshtui-test", kubeconfig=str(kubeconfig),
                         lease_duration=LEASE, renew_period=RENEW, identity=identity)  # fmt: skip


def holder(kube: KubeAPIServer) -> str | None:
    lease = kube.store.get(kube.resource("coordination.k8s.io/v1", "Lease"), "kube-system", "meshtui-test")
    return lease["spec"].get("holderIdentity")


async def only_one_leads(electors: list[LeaderElector], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        assert sum(e.is_leader for e in electors) <= 1
        await asyncio.sleep(0.02)


async def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="shorter than the lease"):
        LeaderOptions(lease_duration=2, renew_period=3)


async def test_one_leader_a_release_hands_over_at_once_a_crash_within_the_lease(kube: KubeAPIServer, kubeconfig: Path) -> None:
    a = LeaderElector.from_options(options(kubeconfig, "a"))
    b = LeaderElector.from_options(options(kubeconfig, "b"))
    changes: list[tuple[str, bool]] = []
    a.subscribe(lambda leading: changes.append(("a", leading)))
    try:
        a.start()
        await eventually(lambda: a.is_leader, what="a leads")
        b.start()
        await only_one_leads([a, b], 1.0)
        assert a.is_leader and not b.is_leader and holder(kube) == "a"

        await a.stop(release=True)  # graceful: the lease is released, b takes it at its next try
        started = time.monotonic()
        await eventually(lambda: b.is_leader, timeout=LEASE, what="b leads after the release")
        assert time.monotonic() - started < RENEW + 0.5 and holder(kube) == "b"
        assert changes == [("a", True), ("a", False)]

        c = LeaderElector.from_options(options(kubeconfig, "c"))
        c.start()
        try:
            await only_one_leads([b, c], 0.5)
            await b.stop(release=False)  # as a crash: the lease is left to expire
            crashed = time.monotonic()
            await eventually(lambda: c.is_leader, timeout=LEASE * 3, what="c takes over")
            handover = time.monotonic() - crashed
            assert LEASE - 2 * RENEW <= handover <= LEASE + RENEW + 0.3, handover
            lease = kube.store.get(kube.resource("coordination.k8s.io/v1", "Lease"), "kube-system", "meshtui-test")
            assert lease["spec"]["holderIdentity"] == "c" and lease["spec"]["leaseTransitions"] >= 1
        finally:
            await c.stop()
    finally:
        await a.stop()
        await b.stop()


async def test_a_leader_that_cannot_renew_steps_down_before_anyone_may_take_over(kube: KubeAPIServer, kubeconfig: Path) -> None:
    a = LeaderElector.from_options(options(kubeconfig, "a"))
    try:
        a.start()
        await eventually(lambda: a.is_leader, what="a leads")
        await kube.set_unreachable(True)
        lost = time.monotonic()
        await eventually(lambda: not a.is_leader, timeout=LEASE * 2, what="a steps down")
        assert time.monotonic() - lost < LEASE  # the renew deadline (2/3 of the lease) is shorter
    finally:
        await kube.set_unreachable(False)
        await a.stop()


@pytest.fixture
async def two_controllers(kube: KubeAPIServer, kubeconfig: Path, tmp_path: Path) -> AsyncIterator[list[WiredController]]:
    """Two controllers with the same federation (the API server as cluster `east`, and each an
    embedded cluster `local` exporting `web`), competing for one Lease in east."""
    clusters = [
        {"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "east"},
         "spec": {"kubeconfig": yaml.safe_dump(kube.kubeconfig_dict("east")), "gatewayHost": "10.1.0.10"}},
        {"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "local"}, "spec": {}},
    ]  # fmt: skip
    controllers = []
    kube.write_direct(namespace("shop"))  # so that every write the leader makes is one request
    try:
        for name in ("a", "b"):
            c = await WiredController.open(tmp_path / name)
            controllers.append(c)
            await c.apply(clusters)
            await c.apply([service("web", "shop"), export("web", "shop")], cluster="local")
        for c, name in zip(controllers, ("a", "b")):
            await c.kube.start(leader=options(kubeconfig, name), tuning=FAST)
            await eventually(lambda: c.kube.leader.is_leader or name == "b", what="a leads")
        yield controllers
    finally:
        for c in controllers:
            await c.close()


def write_requests(kube: KubeAPIServer) -> list[tuple[str, str]]:
    return [(m, p) for m, p in kube.requests if m in ("POST", "PUT", "DELETE") and "/leases" not in p]


async def test_two_controllers_only_the_leader_writes_and_a_crash_hands_over(kube: KubeAPIServer, two_controllers: list[WiredController]) -> None:
    a, b = two_controllers
    kube.write_direct(namespace("httpbin"))
    kube.write_direct(service("httpbin", "httpbin"))
    kube.write_direct(export("httpbin", "httpbin"))
    ex = kube.resource("multicluster.flomesh.io/v1alpha1", "ServiceExport")
    await eventually(lambda: kube_import(kube, "shop", "web") is not None, what="the import written")
    await eventually(lambda: bool(kube.store.get(ex, "httpbin", "httpbin").get("status")), what="the export's status written")
    await eventually(lambda: "east" in b.kube.syncs and b.kube.syncs["east"].listed, what="b follows east too")
    await asyncio.sleep(0.3)  # time for a standby that would write to do so

    assert a.kube.leader.is_leader and not b.kube.leader.is_leader
    assert a.kube.syncs["east"].writes >= 2 and b.kube.syncs["east"].writes == 0
    assert len(write_requests(kube)) == a.kube.syncs["east"].writes  # every write the server saw was a's
    assert kube_import(kube, "shop", "web")["metadata"]["annotations"][WRITTEN_BY_ANNOTATION] == "a"
    # both follow the cluster: the standby's core is as current as the leader's
    assert b.core.get("ServiceExport", "httpbin", "east", "httpbin") and b.core.imports.get(("east", "shop", "web"))

    await a.kube.stop(release=False)  # a dies without releasing its lease
    crashed = time.monotonic()
    await eventually(lambda: b.kube.leader.is_leader, timeout=LEASE * 3, what="b takes over")
    assert time.monotonic() - crashed <= LEASE + RENEW + 0.3

    await b.apply([service("web", "shop", port=9090), export("web", "shop", port=9090)], cluster="local")
    await eventually(lambda: kube_import(kube, "shop", "web")["spec"]["ports"][0]["port"] == 9090, what="b writes")
    assert kube_import(kube, "shop", "web")["metadata"]["annotations"][WRITTEN_BY_ANNOTATION] == "b"


async def test_a_write_naming_a_stale_version_is_refused_without_a_sync(kube: KubeAPIServer, tmp_path: Path) -> None:
    """Without a running sync (a one-shot CLI command), writes still go to the API server."""
    c = await WiredController.open(tmp_path / "state")
    try:
        await c.apply([{"apiVersion": "meshtui.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "east"},
                        "spec": {"kubeconfig": yaml.safe_dump(kube.kubeconfig_dict("east"))}}])  # fmt: skip
        [created] = await c.apply([export("web", "shop")], cluster="east")
        assert kube.store.get(kube.resource("multicluster.flomesh.io/v1alpha1", "ServiceExport"), "shop", "web")
        assert not c.kube.started
        stale = {**export("web", "shop"), "metadata": {**created["metadata"], "resourceVersion": "1"}}
        with pytest.raises(Conflict, match="changed since you read it"):
            await c.apply([stale], cluster="east")
    finally:
        await c.close()
