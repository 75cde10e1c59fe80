"""The server as OpenSSH's `ssh` sees it: only publickey offered, no-PTY sessions refused with one
line, and the TUI in a real pseudo-terminal until `:q`."""
from __future__ import annotations

from meshtui.ssh.session import NO_PTY

from .openssh import needs_ssh, run_ssh, ssh_args
from .ptyterm import PtyProcess

pytestmark = needs_ssh


async def test_only_publickey_is_offered(start_server, keys):
    server = await start_server()
    code, _, err = await run_ssh(ssh_args(server.address[1], None, "alice", "-o", "BatchMode=yes",
                                          "-o", "PreferredAuthentications=password,keyboard-interactive", "-T"))
    assert code == 255
    assert "Permission denied (publickey)." in err


async def test_a_session_without_a_pty_gets_one_line_and_exit_1(start_server, keys):
    server = await start_server()
    identity = keys.private_file(keys.admin, "admin")
    code, out, err = await run_ssh(ssh_args(server.address[1], identity, "alice", "-o", "BatchMode=yes", "-T"))
    assert (code, out) == (1, f"meshtui: {NO_PTY}\n"), err
    assert not server.sessions


async def test_the_tui_in_a_real_terminal(start_server, keys, controller):
    server = await start_server()
    identity = keys.private_file(keys.viewer, "viewer")
    client = PtyProcess(ssh_args(server.address[1], identity, "victor", "-tt"), (96, 28))
    await client.start()
    try:
        await client.wait_text("user victor")
        assert "READ-ONLY" in client.text
        (session,) = server.sessions
        assert session.terminal.size == (96, 28) and session.terminal.term_type == "xterm-256color"
        await client.type("2")
        await client.wait_text("ratings")
        await client.type(":", "q", "\r")
        assert await client.wait() == 0
    finally:
        await client.close()
