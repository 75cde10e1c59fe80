"""Who gets in: authorized keys only (no passwords), keys reloaded without a restart, a rate limit
on connection attempts per address, and a host key that outlives restarts."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import stat

import asyncssh
import pytest

from controller.errors import MeshError
from meshtui.ssh.ratelimit import RateLimit

from .conftest import connect


async def test_an_unknown_key_is_refused(start_server, keys, caplog):
    server = await start_server()
    with caplog.at_level(logging.INFO, logger="meshtui.ssh"):
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(server, keys.stranger, user="mallory")
        conn = await connect(server, keys.admin)  # the same server admits a listed key
        conn.close()
        await asyncio.sleep(0.1)
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ssh login failed")]
    assert len(failed) == 1 and "user=mallory" in failed[0] and "addr=127.0.0.1:" in failed[0]


async def test_passwords_and_keyboard_interactive_are_refused(start_server, keys):
    server = await start_server()
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(server, None, password="hunter2")
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(server, None, kbdint_auth=True, password="hunter2")


async def test_a_key_added_to_the_file_is_admitted_without_restart(start_server, keys):
    server = await start_server()
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(server, keys.stranger)
    keys.authorized.write_text(keys.authorized.read_text() + "\n" + keys.stranger.export_public_key().decode())
    conn = await connect(server, keys.stranger)
    conn.close()
    # and revoking works the same way: the old admin key is gone, a line that is not a key is skipped
    keys.authorized.write_text("not a key\n" + keys.stranger.export_public_key().decode())
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(server, keys.admin)
    assert server.keys.files["admin"].problems == [f"{keys.authorized}:1: not a public key (No valid entries found); skipped"]


async def test_reload_keys_reads_a_change_the_stamp_check_misses(start_server, keys):
    server = await start_server()
    before = keys.viewers.stat()
    keys.viewers.write_text(keys.stranger.export_public_key().decode())  # same size, same inode...
    os.utime(keys.viewers, ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and the old mtime
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(server, keys.stranger)
    server.reload_keys()  # what SIGHUP does
    conn = await connect(server, keys.stranger)
    conn.close()


async def test_the_rate_limit_refuses_the_attempt_past_the_burst(start_server, keys):
    server = await start_server(rate_limit=RateLimit(3, 60.0))
    for _ in range(3):
        conn = await connect(server, keys.admin)
        conn.close()
    with pytest.raises(asyncssh.DisconnectError) as refused:
        await connect(server, keys.admin)
    assert refused.value.code == asyncssh.DISC_TOO_MANY_CONNECTIONS
    assert refused.value.reason.startswith("too many connection attempts from 127.0.0.1; retry in")
    # a failed login spends a token too: that is what slows down key guessing
    other = await start_server(rate_limit=RateLimit(2, 60.0))
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(other, keys.stranger)
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(other, keys.stranger)
    with pytest.raises(asyncssh.DisconnectError):
        await connect(other, keys.admin)


async def test_the_host_key_is_made_once_with_mode_0600_and_reused(start_server, tmp_path, keys):
    path = tmp_path / "ssh" / "host_ed25519_key"
    first = await start_server()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fingerprint = first.host_key.get_fingerprint("sha256")
    conn = await connect(first, keys.admin)
    seen = conn.get_server_host_key().get_fingerprint("sha256")
    conn.close()
    await first.stop()
    second = await start_server()
    assert second.host_key.get_fingerprint("sha256") == fingerprint == seen
    conn = await connect(second, keys.admin)
    assert conn.get_server_host_key().get_fingerprint("sha256") == fingerprint
    conn.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_host_key_others_can_read_is_refused(start_server, tmp_path):
    path = tmp_path / "ssh" / "host_ed25519_key"
    await (await start_server()).stop()
    path.chmod(0o644)
    with pytest.raises(MeshError, match=re.escape(f"host key {path} is accessible by others (mode 0644); run `chmod 600 {path}`")):
        await start_server()
