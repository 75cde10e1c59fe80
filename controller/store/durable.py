"""The durable store of user-written resources: a snapshot plus an append-only journal.

Each apply or delete is one journal record, written and fsynced before it is
acknowledged; a record is a line `<crc32 hex> <json>`. A process killed while
appending leaves at most a torn last line, which was never acknowledged and is
dropped on load. Every `COMPACT_EVERY` records the whole state is written as a
new snapshot (temporary file, fsync, rename, directory fsync) and the journal is
replaced by an empty one. Anything else that does not parse is corruption, and
loading stops with StoreCorrupt rather than starting empty.

Derived objects (ServiceImports, statuses) are not stored: they are recomputed.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

from controller.errors import StoreCorrupt, StoreWriteFailed

from .atomic import ensure_private_dir, fsync_dir, write_atomic

log = logging.getLogger("meshtui.store")

COMPACT_EVERY = 2000
FORMAT = 1

Change = tuple[str, dict[str, Any]]  # ("put", object) | ("delete", object)


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    md = obj["metadata"]
    return (obj["kind"], md.get("cluster") or "", md.get("namespace") or "", md["name"])


class DurableStore:
    def __init__(self, directory: Path | None):
        self.directory = ensure_private_dir(directory) if directory else None
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.revision = 0
        self._records = 0
        self._journal_good_size = 0

    @property
    def snapshot_path(self) -> Path:
        assert self.directory
        return self.directory / "snapshot.json"

    @property
    def journal_path(self) -> Path:
        assert self.directory
        return self.directory / "journal.log"

    # loading ---------------------------------------------------------------------------
    def load(self) -> None:
        if not self.directory:
            return
        if self.snapshot_path.exists():
            try:
                snap = json.loads(self.snapshot_path.read_bytes())
                if snap.get("format") != FORMAT:
                    raise ValueError(f"unknown format {snap.get('format')!r}")
                self.revision = int(snap["revision"])
                for obj in snap["objects"]:
                    self.objects[_key(obj)] = obj
            except (ValueError, KeyError, TypeError) as e:
                raise StoreCorrupt(f"state store {self.snapshot_path} is corrupt ({e}); move it aside to start empty, or restore a backup") from None
        if self.journal_path.exists():
            self._replay(self.journal_path.read_bytes())

    def _replay(self, data: bytes) -> None:
        offset = 0
        lines = data.split(b"\n")
        for i, line in enumerate(lines):
            is_last = i == len(lines) - 1
            if is_last:  # text after the final newline: a torn, unacknowledged append
                break
            try:
                crc_hex, body = line.split(b" ", 1)
                if int(crc_hex, 16) != zlib.crc32(body):
                    raise ValueError("checksum mismatch")
                record = json.loads(body)
            except ValueError as e:
                if i == len(lines) - 2 and not lines[-1]:
                    break  # the last complete line is damaged: torn while being written
                raise StoreCorrupt(f"state store journal {self.journal_path} is corrupt at record {i + 1} ({e}); move it aside or restore a backup") from None
            offset += len(line) + 1
            if record["rev"] <= self.revision:
                continue  # already in the snapshot (crash between snapshot and journal reset)
            self._apply_memory(record["changes"], record["rev"])
            self._records += 1
        self._journal_good_size = offset

    # writing -----------------------------------------------------------------------------
    def commit(self, changes: list[Change], revision: int) -> None:
        """Make `changes` durable, then visible. On failure nothing changes and StoreWriteFailed
        names the cause (e.g. the disk is full)."""
        if self.directory:
            record = {"rev": revision, "changes": [[op, obj] for op, obj in changes]}
            body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
            line = b"%08x " % zlib.crc32(body) + body + b"\n"
            self._append(line)
        self._apply_memory([[op, obj] for op, obj in changes], revision)
        self._records += 1
        if self.directory and self._records >= COMPACT_EVERY:
            try:
                self.compact()
            except StoreWriteFailed as e:  # the change itself is durable in the journal: still a success
                log.warning("%s; the journal keeps growing until a later compaction succeeds", e.message)
                self._records = 0

    def _append(self, line: bytes) -> None:
        try:
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size != self._journal_good_size:
                    os.ftruncate(fd, self._journal_good_size)  # drop the tail of an earlier failed write
                os.lseek(fd, self._journal_good_size, os.SEEK_SET)
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            why = "the disk is full" if e.errno == errno.ENOSPC else e.strerror
            raise StoreWriteFailed(f"could not write the state store in {self.directory}: {why}; nothing was changed") from None
        self._journal_good_size += len(line)

    def compact(self) -> None:
        assert self.directory
        snap = {"format": FORMAT, "revision": self.revision, "objects": list(self.objects.values())}
        try:
            write_atomic(self.snapshot_path, json.dumps(snap, separators=(",", ":")).encode())
            write_atomic(self.journal_path, b"")
        except OSError as e:
            why = "the disk is full" if e.errno == errno.ENOSPC else e.strerror
            raise StoreWriteFailed(f"could not compact the state store in {self.directory}: {why}") from None
        self._journal_good_size = 0
        self._records = 0
        fsync_dir(self.directory)

    def _apply_memory(self, changes: list, revision: int) -> None:
        for op, obj in changes:
            if op == "put":
                self.objects[_key(obj)] = obj
            else:
                self.objects.pop(_key(obj), None)
        self.revision = max(self.revision, revision)
