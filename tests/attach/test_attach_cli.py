"""`meshtui attach URL` as a person runs it, in a real pseudo-terminal, against a `meshtui
controller` subprocess serving its API over TLS, restarted underneath it."""
from __future__ import annotations

import asyncio
import json

from tests.api.test_http import _self_signed
from tests.cli.conftest import MESHTUI, meshtui
from tests.ssh.conftest import SCENARIO
from tests.ssh.ptyterm import PtyProcess

from .test_headless import free_port


async def test_attach_follows_the_controller_through_a_restart(headless, tmp_path):
    state = headless.state
    cert, key = _self_signed(tmp_path)
    serve = ("--api", f"127.0.0.1:{free_port()}", "--tls-cert", str(cert), "--tls-key", str(key))
    proc = headless.start(*serve)
    record = await asyncio.to_thread(headless.wait_recorded, proc)
    assert record.url.startswith("https://")
    assert meshtui(state, "--cacert", str(cert), "apply", "--cluster", "cluster-1", "-f", "-", stdin=SCENARIO).code == 0

    r = meshtui(tmp_path / "elsewhere", "attach", record.url, "--token", "not-a-token", "--cacert", str(cert))
    assert (r.code, r.err) == (1, "error: unknown token\n")
    r = meshtui(state, "attach", record.url)  # without the CA, the certificate is not trusted
    assert r.code == 1 and "TLS certificate is not trusted" in r.err

    tui = PtyProcess([MESHTUI, "attach", record.url, "--readonly", "--state", str(state), "--cacert", str(cert)], (110, 30))
    await tui.start()
    try:
        await tui.wait_text("READ-ONLY")
        await tui.type("2")
        await tui.wait_text("ratings")
        await tui.wait_text("● live")

        code, _ = await asyncio.to_thread(headless.stop, proc)
        assert code == 0
        await tui.wait_text("reconnecting")
        proc = headless.start(*serve)
        await asyncio.to_thread(headless.wait_recorded, proc)
        await tui.wait_text("● live", timeout=20)
        assert "reconnecting" not in tui.text

        assert meshtui(state, "--cacert", str(cert), "apply", "--cluster", "cluster-1", "-f", "-",
                       stdin=SCENARIO.replace("name: ratings", "name: reviews")).code == 0
        await tui.wait_text("reviews")
        await tui.type("3")
        await tui.wait_text("Exports")
        await tui.type("x")
        await tui.wait_text("read-only session")
        await tui.type(":", "q", "\r")
        assert await tui.wait() == 0
    finally:
        await tui.close()
    assert json.loads(meshtui(state, "--cacert", str(cert), "get", "svcexp", "-A", "-o", "json").out)["items"] == []  # the refused export
