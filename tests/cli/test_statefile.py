"""Where the state dir is, the running controller's record, and the store lock."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.errors import Unavailable
from controller.statefile import ControllerRecord, StoreLock, read_record, remove_record, resolve_state_dir, write_record


def test_state_dir_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHTUI_STATE", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_state_dir(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_state_dir(None) == tmp_path / "env"
    monkeypatch.delenv("MESHTUI_STATE")
    assert resolve_state_dir(None) == tmp_path / "xdg" / "meshtui"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert resolve_state_dir(None) == tmp_path / "home" / ".local" / "state" / "meshtui"


def test_record_is_private_read_back_and_removed_only_by_its_writer(tmp_path):
    write_record(tmp_path, ControllerRecord("http://127.0.0.1:4000", os.getpid(), False))
    assert (tmp_path / "controller.json").stat().st_mode & 0o777 == 0o600
    assert read_record(tmp_path) == ControllerRecord("http://127.0.0.1:4000", os.getpid(), False)
    remove_record(tmp_path, os.getpid() + 1)
    assert read_record(tmp_path) is not None
    remove_record(tmp_path, os.getpid())
    assert read_record(tmp_path) is None and not (tmp_path / "controller.json").exists()


def test_a_record_of_a_dead_process_or_a_torn_file_is_ignored(tmp_path):
    write_record(tmp_path, ControllerRecord("http://127.0.0.1:4000", 2**22 + 4321))
    assert read_record(tmp_path) is None
    (tmp_path / "controller.json").write_text('{"url": "http://127')
    assert read_record(tmp_path) is None


def test_the_store_lock_excludes_a_second_holder_even_in_one_process(tmp_path: Path):
    first, second = StoreLock(tmp_path), StoreLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(Unavailable, match=f"in use by another meshtui process \\(pid {os.getpid()}\\)"):
            second.acquire(wait=0.1)
    finally:
        first.release()
    with second:
        assert second.holder_pid() == os.getpid()
    assert second.holder_pid() is None
