"""One TUI per SSH session on a shared controller: each on its own terminal size, writes audited
under the SSH user, viewers read-only, and a session's end (or death) leaves the rest serving."""
from __future__ import annotations

import asyncio
import logging
import re
import sys

import pytest

from controller.errors import Forbidden
from meshtui.ssh.session import NO_COMMANDS, NO_PTY

from .conftest import RATINGS, connect, session, wait_until
from .terminal import Terminal


def footer_fits(term: Terminal) -> bool:
    """The screen is drawn for this terminal's size: the footer is on the last row, the panels' right
    border reaches the last column, and no row is longer than the width."""
    width, height = term.size
    if len(term.lines) != height:
        return False
    rows = [line.rstrip() for line in term.lines]
    return ("palette" in rows[-1] and any(len(r) == width and r.endswith(("╮", "╯", "│")) for r in rows)
            and all(len(r) <= width for r in rows))


def moves_within(term: Terminal, mark: int) -> bool:
    """Every cursor move written since `mark` stays inside the terminal's current size."""
    width, height = term.size
    return all(1 <= r <= height and 1 <= c <= width for r, c in term.moves_since(mark))


def moves_fit(term: Terminal, mark: int) -> bool:
    """Drawn since `mark`, and inside the terminal's current size."""
    return bool(term.moves_since(mark)) and moves_within(term, mark)


async def export_ratings(term: Terminal) -> None:
    await term.type("3")
    await term.wait_text("Exports")
    await term.wait_text("ratings")
    await term.type("x")


async def test_writes_in_a_session_are_audited_under_the_ssh_user(start_server, keys, controller):
    server = await start_server()
    conn, term = await session(server, keys.admin, (110, 30), user="alice")
    async with conn:
        await term.wait_text("user alice")
        await export_ratings(term)
        for _ in range(100):
            entries = [a for a in await controller.audit() if a.kind == "ServiceExport"]
            if entries:
                break
            await asyncio.sleep(0.05)
        assert [(a.action, a.user, a.cluster, a.namespace, a.name) for a in entries] == [("apply", "alice", "cluster-1", "shop", "ratings")]
        export = await controller.get("svcexp", "ratings", cluster="cluster-1", namespace="shop")
        assert export["metadata"]["name"] == "ratings"


async def test_a_viewer_cannot_edit(start_server, keys, controller):
    server = await start_server()
    before = [(a.action, a.name) for a in await controller.audit()]
    conn, term = await session(server, keys.viewer, (110, 30), user="victor")
    async with conn:
        await term.wait_text("READ-ONLY")
        await export_ratings(term)
        await term.wait_text("read-only session")
        # below the TUI, the session's controller refuses writes as well
        (viewer,) = server.sessions
        with pytest.raises(Forbidden):
            await viewer.app.controller.apply(RATINGS, cluster="cluster-2")
    assert await controller.list("svcexp") == []
    assert [(a.action, a.name) for a in await controller.audit()] == before


async def test_two_sessions_render_their_own_size_and_resize_independently(start_server, keys):
    server = await start_server()
    conn_a, a = await session(server, keys.admin, (100, 30), user="alice")
    conn_b, b = await session(server, keys.viewer, (64, 20), user="bob", term="xterm")
    async with conn_a, conn_b:
        await a.wait_for(footer_fits, what="a's footer at 100x30")
        await b.wait_for(footer_fits, what="b's footer at 64x20")
        assert "user alice" in a.text and "user bob" in b.text
        assert moves_fit(a, 0) and moves_fit(b, 0)

        mark_a, mark_b = a.mark(), b.mark()
        a.resize(80, 24)
        await a.wait_for(lambda t: footer_fits(t) and moves_fit(t, mark_a), what="a redrawn at 80x24")
        await asyncio.sleep(0.5)
        assert b.size == (64, 20) and footer_fits(b) and moves_within(b, mark_b)  # b untouched by a's resize

        mark_a, mark_b = a.mark(), b.mark()
        b.resize(120, 40)
        await b.wait_for(lambda t: footer_fits(t) and moves_fit(t, mark_b), what="b redrawn at 120x40")
        assert any(r == 40 for r, _ in b.moves_since(mark_b))
        await asyncio.sleep(0.5)
        assert footer_fits(a) and moves_within(a, mark_a)
        sizes = sorted(s.terminal.size for s in server.sessions)
        assert sizes == [(80, 24), (120, 40)]
        # each session's colour depth follows its own TERM
        depth = {s.peer.user: s.app.console.color_system for s in server.sessions}
        assert depth == {"alice": "256", "bob": "standard"}


async def test_a_session_killed_abruptly_leaves_the_server_serving(start_server, keys, caplog):
    streams = (sys.stdout, sys.stderr)
    server = await start_server()
    conn_a, a = await session(server, keys.admin, (90, 26), user="alice")
    conn_b, b = await session(server, keys.admin, (90, 26), user="bob")
    await a.wait_text("user alice")
    await b.wait_text("user bob")
    with caplog.at_level(logging.INFO, logger="meshtui.ssh"):
        conn_a.abort()  # no SSH disconnect, no channel close: the TCP connection just goes
        await wait_until(lambda: len(server.sessions) == 1, what="the killed session to end")
    ended = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ssh session ended")]
    assert len(ended) == 1 and "user=alice" in ended[0]
    # the other session is still live: it shows a change made after the kill
    await b.type("2")
    await b.wait_text("ratings")
    conn_c, c = await session(server, keys.admin, (90, 26), user="carol")
    async with conn_b, conn_c:
        await c.wait_text("user carol")
        assert (sys.stdout, sys.stderr) == streams  # no session's output capture left installed
    await wait_until(lambda: not server.sessions, what="every session to end")
    assert (sys.stdout, sys.stderr) == streams


async def test_quit_ends_the_session_with_one_structured_log_line(start_server, keys, caplog):
    server = await start_server()
    with caplog.at_level(logging.INFO, logger="meshtui.ssh"):
        conn, term = await session(server, keys.viewer, (100, 30), user="victor", env={"COLORTERM": "truecolor"})
        async with conn:
            await term.wait_text("user victor")
            await term.type(":", "q", "\r")
            assert await term.ended() == 0
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ssh session ended")]
    fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    assert fields["user"] == "victor" and fields["role"] == "viewer" and fields["addr"].startswith("127.0.0.1:")
    assert fields["key"] == keys.viewer.get_fingerprint("sha256") and fields["term"] == "xterm-256color"
    assert fields["size"] == "100x30" and fields["colors"] == "truecolor" and fields["reason"] == "quit"
    assert re.fullmatch(r"\d+\.\d+s", fields["duration"])


async def test_sessions_without_a_terminal_or_with_a_command_are_refused(start_server, keys):
    server = await start_server()
    async with await connect(server, keys.admin) as conn:
        result = await conn.run(check=False)  # a shell without a PTY, as `ssh -T`
        assert (result.exit_status, result.stdout) == (1, f"meshtui: {NO_PTY}\n")
        result = await conn.run("ls", term_type="xterm", check=False)
        assert (result.exit_status, result.stdout) == (1, f"meshtui: {NO_COMMANDS}\r\n")
    assert not server.sessions


async def test_idle_sessions_are_closed_and_the_limit_holds(start_server, keys):
    server = await start_server(idle_timeout=2.5, max_sessions=1)
    conn, term = await session(server, keys.admin, (90, 26))
    async with conn:
        await term.wait_text("user alice")
        await term.type("2")  # a key press: the idle clock starts again
        async with await connect(server, keys.admin) as second:
            result = await second.run(term_type="xterm", check=False)
            assert result.exit_status == 1
            assert result.stdout == "meshtui: the server has its maximum of 1 sessions; try again later\r\n"
        assert await term.ended(timeout=5) == 0
        assert "no input for 2.5s; session closed" in term.raw.decode(errors="replace")
    conn, term = await session(server, keys.admin, (90, 26))  # the slot is free again
    async with conn:
        await term.wait_text("user alice")
