"""Where a state dir lives, which controller serves it, and the lock that keeps one writer per store.

- `resolve_state_dir`: `--state DIR`, else $MESHTUI_STATE, else $XDG_STATE_HOME/meshtui, else
  ~/.local/state/meshtui.
- `controller.json` (0600): `{"url", "pid", "tls"}` of the running controller, written at start and
  removed at stop; a record whose process is gone is stale and ignored.
- `lock`: an exclusive `flock` held by whichever process has the store open (the headless controller
  for its whole life, or a CLI command running an in-process controller). The file holds the pid of
  the holder, for error messages.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from controller.errors import Unavailable
from controller.store.atomic import ensure_private_dir, write_atomic

RECORD_FILE = "controller.json"
LOCK_FILE = "lock"
LOCK_WAIT_SECONDS = 3.0  # how long to wait for a store another process holds briefly (a CLI command)


def resolve_state_dir(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("MESHTUI_STATE"):
        return Path(os.environ["MESHTUI_STATE"]).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg).expanduser() / "meshtui"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass(frozen=True)
class ControllerRecord:
    url: str
    pid: int
    tls: bool = False


def write_record(state_dir: Path, record: ControllerRecord) -> None:
    ensure_private_dir(Path(state_dir))
    write_atomic(Path(state_dir) / RECORD_FILE, json.dumps(asdict(record)).encode())


def read_record(state_dir: Path) -> ControllerRecord | None:
    """The controller serving this state dir, or None (no record, unreadable, or its process is gone)."""
    try:
        data = json.loads((Path(state_dir) / RECORD_FILE).read_text())
        record = ControllerRecord(url=str(data["url"]), pid=int(data["pid"]), tls=bool(data.get("tls", False)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if pid_alive(record.pid) else None


def remove_record(state_dir: Path, pid: int) -> None:
    """Remove the record if it is still the one `pid` wrote."""
    path = Path(state_dir) / RECORD_FILE
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


class StoreLock:
    """Exclusive lock on a state dir's store. flock locks belong to the open file, so two holders in
    one process exclude each other too."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LOCK_FILE
        self._fd: int | None = None

    def holder_pid(self) -> int | None:
        try:
            return int(self.path.read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, retrying for up to `wait` seconds; raises Unavailable naming the holder."""
        ensure_private_dir(self.state_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    os.close(fd)
                    holder = self.holder_pid()
                    who = f"another meshtui process (pid {holder})" if holder else "another meshtui process"
                    raise Unavailable(f"the store at {self.state_dir} is in use by {who}") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
