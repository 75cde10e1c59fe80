"""Who may open a session: an authorized-keys file (full access) and a viewer-keys file
(read-only), both in OpenSSH's authorized_keys format (options such as `from="10.0.0.0/8"` apply).

Each file is read again when it changes (mtime, size or inode differ from the last read), so keys
are added or revoked without a restart; `reload()` forces a read (SIGHUP). A file that is missing
admits nobody; a line that is not a key is skipped and reported with its line number."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import asyncssh

log = logging.getLogger("meshtui.ssh")

ADMIN = "admin"
VIEWER = "viewer"


@dataclass(frozen=True)
class Grant:
    role: str  # ADMIN | VIEWER
    fingerprint: str  # SHA256:..., as OpenSSH prints it


class KeyFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0  # keys admitted by the last read
        self.problems: list[str] = []  # lines skipped by the last read
        self._keys: asyncssh.SSHAuthorizedKeys | None = None
        self._seen: tuple[int, int, int] | None = None

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path) if self.path else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino) if st else None

    def keys(self) -> asyncssh.SSHAuthorizedKeys | None:
        """The file's keys, read again first if the file changed."""
        if self._stamp() != self._seen:
            self.reload()
        return self._keys

    def reload(self) -> None:
        self._seen = self._stamp()
        self._keys, self.count, self.problems = None, 0, []
        if self._seen is None:
            if self.path:
                log.info("key file %s is missing: it admits nobody", self.path)
            return
        try:
            text = Path(self.path).read_text()  # type: ignore[arg-type]
        except (OSError, UnicodeDecodeError) as e:
            log.error("cannot read key file %s (%s): it admits nobody", self.path, e)
            return
        good: list[str] = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                asyncssh.import_authorized_keys(line)
            except ValueError as e:  # asyncssh skips what is not a key, then finds no entry
                self.problems.append(f"{self.path}:{number}: not a public key ({e}); skipped")
                continue
            good.append(line)
        for problem in self.problems:
            log.warning("%s", problem)
        if good:
            self._keys = asyncssh.import_authorized_keys("\n".join(good))
            self.count = len(good)
        log.info("key file %s: %d key(s)", self.path, self.count)


class KeyRing:
    """Both files. A key listed in both is a viewer: the smaller grant wins."""

    def __init__(self, authorized: Path | None, viewers: Path | None) -> None:
        self.files = {VIEWER: KeyFile(viewers), ADMIN: KeyFile(authorized)}

    def grant(self, key: asyncssh.SSHKey, host: str, address: str) -> Grant | None:
        for role, keyfile in self.files.items():
            keys = keyfile.keys()
            if keys is not None and keys.validate(key, host, address) is not None:
                return Grant(role, key.get_fingerprint("sha256"))
        return None

    def reload(self) -> None:
        for keyfile in self.files.values():
            keyfile.reload()
