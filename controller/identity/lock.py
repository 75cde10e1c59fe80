"""One writer at a time for <state>/identity, across processes: the runtime's issuing and
renewals and `meshtui identity rotate-anchor` in another terminal each hold this lock while
they change certificates, and each opens the authority afresh under it (an authority object
caches the signing anchor, which a rotation elsewhere replaces)."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from controller.errors import StoreWriteFailed

LOCK_FILE = "lock"


class AuthorityLock:
    """flock locks belong to the open file, so two holders in one process (two threads, or a
    rotation and a renewal) exclude each other too. `acquire` blocks: call it from a thread
    when an event loop must keep running."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / "identity" / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise StoreWriteFailed(f"cannot open the identity lock {self.path}: {err.strerror or err}") from err
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor of the open file drops the lock
            self._fd = None


@contextmanager
def authority_lock(state_dir: str | Path) -> Iterator[None]:
    lock = AuthorityLock(state_dir)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
