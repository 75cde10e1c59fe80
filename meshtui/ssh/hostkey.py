"""The server's host key: an ed25519 key made on first start (mode 0600) and reused after, so
clients see the same host fingerprint across restarts."""
from __future__ import annotations

import logging
import stat
from pathlib import Path

import asyncssh

from controller.errors import MeshError
from controller.store.atomic import ensure_private_dir, write_atomic

log = logging.getLogger("meshtui.ssh")


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    path = Path(path)
    if not path.exists():
        ensure_private_dir(path.parent)
        key = asyncssh.generate_private_key("ssh-ed25519", comment="meshtui host key")
        write_atomic(path, key.export_private_key(), mode=0o600)
        log.info("made a new host key %s (%s)", path, key.get_fingerprint("sha256"))
        return key
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise MeshError(f"host key {path} is accessible by others (mode {mode:04o}); run `chmod 600 {path}`")
    try:
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError) as e:
        raise MeshError(f"cannot read the host key {path}: {e}") from None
