"""The state dir's disk fills up: applies are refused with a clear error, and the state already stored is
intact (in memory and after a restart). The state dir is a tiny tmpfs (needs root and mount)."""
from __future__ import annotations

import copy
import errno
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from controller.embedded import EmbeddedController
from controller.errors import StoreWriteFailed
from controller.store import durable
from tests.support import apply_reference

TMPFS_SIZE = "256k"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the disk-full tests need root and mount")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Fill the file system until a write fails with ENOSPC; returns the filler file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def services(n: int, size: int = 200) -> str:
    return "---\n".join(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: big-{i}, namespace: load, annotations: {{note: {'n' * size}}}}}\n"
        f"spec: {{ports: [{{port: 80}}]}}\n" for i in range(n))


def stored(controller: EmbeddedController) -> tuple[dict, int]:
    return copy.deepcopy(controller.core.store.objects), controller.core.store.revision


async def test_a_full_disk_refuses_applies_with_a_clear_error_and_keeps_the_old_state(small_disk: Path):
    state = small_disk / "state"
    controller = await EmbeddedController.open(state)
    try:
        await apply_reference(controller)
        before = stored(controller)
        filler = fill(small_disk)
        for attempt in range(3):  # the journal's last page may take a small record: keep writing until refused
            with pytest.raises(StoreWriteFailed) as refused:
                await controller.apply(services(200), cluster="cluster-2", source="big.yaml")
            assert "the disk is full" in refused.value.message and str(state) in refused.value.message
            assert refused.value.status == 507
            assert stored(controller) == before  # nothing of the refused multi-document apply
            assert await controller.list("svc", cluster="cluster-2", namespace="load") == []
        # the controller keeps serving reads and works again once space is freed
        assert len(await controller.list("svcexp", cluster="cluster-1")) == 2
        filler.unlink()
        await controller.apply(services(3), cluster="cluster-2", source="small.yaml")
        after_space = stored(controller)
    finally:
        await controller.close()
    reopened = await EmbeddedController.open(state)
    try:
        assert stored(reopened) == after_space
        assert sorted(o["metadata"]["name"] for o in await reopened.list("svc", cluster="cluster-2", namespace="load")) == \
            ["big-0", "big-1", "big-2"]
    finally:
        await reopened.close()


async def test_a_refused_write_leaves_a_store_that_reopens_to_the_old_state(small_disk: Path):
    """The torn tail a full disk leaves in the journal is not read back as data, nor as corruption."""
    state = small_disk / "state"
    controller = await EmbeddedController.open(state)
    await apply_reference(controller)
    before = stored(controller)
    fill(small_disk)
    with pytest.raises(StoreWriteFailed):
        await controller.apply(services(200), cluster="cluster-2", source="big.yaml")
    await controller.close()
    reopened = await EmbeddedController.open(state)
    try:
        assert stored(reopened) == before
    finally:
        await reopened.close()


async def test_a_refused_apply_is_not_stored_even_when_compaction_is_what_failed(small_disk: Path, monkeypatch):
    state = small_disk / "state"
    controller = await EmbeddedController.open(state)
    await apply_reference(controller)  # a few journal records: the journal's last page has room left
    fill(small_disk)
    monkeypatch.setattr(durable, "COMPACT_EVERY", 1)  # the next record that fits is followed by a compaction
    outcomes = []
    for i in range(3):  # small applies: they fit in the journal's last page; compaction needs new pages
        doc = f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: load}}\nspec: {{ports: [{{port: 80}}]}}\n"
        try:
            await controller.apply(doc, cluster="cluster-2", source=f"s{i}.yaml")
            outcomes.append((f"s{i}", True))
        except StoreWriteFailed:
            outcomes.append((f"s{i}", False))
    await controller.close()
    reopened = await EmbeddedController.open(state)
    try:
        names = {o["metadata"]["name"] for o in await reopened.list("svc", cluster="cluster-2", namespace="load")}
    finally:
        await reopened.close()
    assert names == {name for name, accepted in outcomes if accepted}, outcomes
