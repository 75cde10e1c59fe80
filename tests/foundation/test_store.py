"""Durable state: restarts, stale updates, corruption, and a writer killed mid-stream."""
import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from controller.embedded import EmbeddedController
from controller.errors import Conflict, StoreCorrupt
from tests.support import apply_reference

ROOT = Path(__file__).resolve().parents[2]


async def test_state_survives_a_restart(tmp_path):
    c = await EmbeddedController.open(tmp_path / "s")
    await apply_reference(c, policy="fsm_gtp_failover.yaml")
    gtp = await c.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin")
    await c.close()
    again = await EmbeddedController.open(tmp_path / "s")
    same = await again.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin")
    assert same["metadata"]["resourceVersion"] == gtp["metadata"]["resourceVersion"]
    assert same["spec"] == gtp["spec"]
    imp = await again.get("svcimp", "httpbin", cluster="cluster-2", namespace="httpbin")  # derived state rebuilt
    assert len(imp["spec"]["ports"][0]["endpoints"]) == 2
    # cluster address ranges are kept, not reassigned
    c1 = await again.get("cluster", "cluster-1")
    assert c1["metadata"]["annotations"]["meshtui.io/loopback"].endswith(".11")


async def test_snapshot_compaction_keeps_everything(tmp_path, monkeypatch):
    from controller.store import durable

    monkeypatch.setattr(durable, "COMPACT_EVERY", 3)
    c = await EmbeddedController.open(tmp_path / "s")
    await apply_reference(c)
    for i in range(7):
        await c.apply(f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: x}}\nspec: {{ports: [{{port: 80}}]}}\n", cluster="cluster-2")
    assert (tmp_path / "s/store/snapshot.json").exists()
    count = len(c.core.store.objects)
    again = await EmbeddedController.open(tmp_path / "s")
    assert len(again.core.store.objects) == count


async def test_stale_resource_version_is_a_conflict(controller):
    await apply_reference(controller, policy="fsm_gtp_failover.yaml")
    read = await controller.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin")
    edited = {**read, "spec": {**read["spec"], "lbType": "ActiveActive"}}
    edited.pop("status", None)
    first = (await controller.apply([edited], cluster="cluster-2"))[0]
    assert int(first["metadata"]["resourceVersion"]) > int(read["metadata"]["resourceVersion"])
    assert first["metadata"]["generation"] == 2
    with pytest.raises(Conflict) as e:
        await controller.apply([{**edited, "spec": {**edited["spec"], "lbType": "Locality", "targets": []}}], cluster="cluster-2")
    assert "changed since you read it" in str(e.value)
    assert (await controller.get("gtp", "httpbin", cluster="cluster-2", namespace="httpbin"))["spec"]["lbType"] == "ActiveActive"


async def test_corrupt_store_is_reported_not_emptied(tmp_path):
    c = await EmbeddedController.open(tmp_path / "s")
    await apply_reference(c)
    c.core.store.compact()
    snap = tmp_path / "s/store/snapshot.json"
    snap.write_text(snap.read_text()[:100])
    with pytest.raises(StoreCorrupt) as e:
        await EmbeddedController.open(tmp_path / "s")
    assert str(snap) in str(e.value)
    assert len(snap.read_text()) == 100  # nothing was overwritten


async def test_corrupt_record_in_the_middle_of_the_journal_is_reported(tmp_path):
    c = await EmbeddedController.open(tmp_path / "s")
    await apply_reference(c)
    journal = tmp_path / "s/store/journal.log"
    lines = journal.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"cluster", b"klaster", 1)
    journal.write_bytes(b"\n".join(lines))
    with pytest.raises(StoreCorrupt) as e:
        await EmbeddedController.open(tmp_path / "s")
    assert "record 2" in str(e.value)


async def test_store_files_are_private(tmp_path):
    c = await EmbeddedController.open(tmp_path / "s")
    await apply_reference(c)
    c.core.store.compact()
    for p in (tmp_path / "s/store").iterdir():
        assert p.stat().st_mode & 0o077 == 0, p


WRITER = r"""
import asyncio, sys
from controller.embedded import EmbeddedController
async def main():
    c = await EmbeddedController.open(sys.argv[1])
    await c.apply("apiVersion: flomesh.io/v1alpha1\nkind: Cluster\nmetadata: {name: c1}\n")
    i = 0
    while True:
        docs = "---\n".join(
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}-{j}, namespace: load, labels: {{batch: b{i}}}}}\nspec: {{ports: [{{port: 80}}]}}\n"
            for j in range(3)
        )
        await c.apply(docs + "x: " + "y" * (i % 50) + "\n" if False else docs, cluster="c1")
        print(i, flush=True)
        i += 1
asyncio.run(main())
"""


@pytest.mark.parametrize("after", [5, 37, 120])
async def test_writer_killed_mid_stream_leaves_only_whole_applies(tmp_path, after):
    from controller.store import durable

    state = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(state)], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        acked = -1
        for line in proc.stdout:
            acked = int(line)
            if acked >= after:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    c = await EmbeddedController.open(state)
    batches: dict[str, int] = {}
    for o in await c.list("svc", cluster="c1"):
        batches[o["metadata"]["labels"]["batch"]] = batches.get(o["metadata"]["labels"]["batch"], 0) + 1
    assert all(n == 3 for n in batches.values()), batches  # all or nothing per apply
    assert all(f"b{i}" in batches for i in range(acked + 1))  # every acknowledged apply is there
    assert len(batches) <= acked + 2  # at most the one in flight beyond
