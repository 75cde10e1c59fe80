"""Crash-safe file replacement: a reader sees the old content or the new, never a mix."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from controller.errors import StoreWriteFailed


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to a temp file in the same directory (created 0600, then set to `mode`),
    fsync it, rename it over `path`, fsync the directory. Raises StoreWriteFailed naming the path."""
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = ""
        fsync_dir(path.parent)
    except OSError as err:
        raise StoreWriteFailed(f"cannot write {path}: {err.strerror or err}") from err
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def make_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise StoreWriteFailed(f"cannot create directory {path}: {err.strerror or err}") from err


def replace_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` (a relative path), replacing whatever is there, atomically."""
    tmp = link.with_name(f".{link.name}.link.tmp")
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError as err:
        raise StoreWriteFailed(f"cannot link {link} -> {target}: {err.strerror or err}") from err
