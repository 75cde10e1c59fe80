"""A proxy with a --tls-dir serves, and describes its certificates (GET /tls), with the `ssl`
module alone: it never loads `cryptography` (8 MiB of memory)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from controller.identity import IdentityAuthority
from tests.proxy.http_support import free_port

ROOT = Path(__file__).resolve().parents[2]


def loaded(pid: int, library: str) -> bool:
    return library in Path(f"/proc/{pid}/maps").read_text()


def test_the_proxy_never_loads_cryptography(tmp_path: Path) -> None:
    ca = IdentityAuthority(tmp_path)
    ca.leaf("c1", "meshtui-system", "gateway")
    ca.leaf("c1", "default", "default")
    admin = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", "--cluster", "c1", "--gateway", f"127.0.0.1:{free_port()}",
         "--outbound", f"127.0.0.1:{free_port()}", f"--admin={admin}", "--log-level", "WARNING",
         f"--tls-dir={tmp_path / 'identity' / 'leaves' / 'c1'}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        assert not loaded(proc.pid, "cryptography")
        with urllib.request.urlopen(f"http://{admin}/tls", timeout=5) as r:
            described = json.load(r)
        assert described["identities"]["default/default"]["identity"] == "spiffe://meshtui.local/cluster/c1/ns/default/sa/default"
        assert described["trust_anchors"] == [described["identities"]["default/default"]["anchor"]]
        assert not loaded(proc.pid, "cryptography")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
