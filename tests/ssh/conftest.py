"""An SSH server (meshtui.ssh) on loopback over a real EmbeddedController, keys made per test,
and real SSH clients (asyncssh's, with a PTY) to drive it."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import asyncssh
import pytest

from controller.embedded import EmbeddedController
from meshtui.ssh.ratelimit import RateLimit
from meshtui.ssh.server import SshServer
from meshtui.ssh.settings import SshSettings

from .terminal import Terminal, open_terminal

CLUSTERS = """
apiVersion: flomesh.io/v1alpha1
kind: Cluster
metadata: {name: cluster-1}
spec: {}
---
apiVersion: flomesh.io/v1alpha1
kind: Cluster
metadata: {name: cluster-2}
spec: {}
"""
RATINGS = """
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  ports: [{port: 9080, protocol: TCP}]
"""
SCENARIO = CLUSTERS + "---" + RATINGS  # applied with --cluster cluster-1 (the Clusters have no cluster)


@dataclass
class Keys:
    dir: Path
    admin: asyncssh.SSHKey
    viewer: asyncssh.SSHKey
    stranger: asyncssh.SSHKey
    authorized: Path = field(init=False)
    viewers: Path = field(init=False)

    def __post_init__(self) -> None:
        self.authorized = self.dir / "authorized_keys"
        self.viewers = self.dir / "viewer_keys"
        self.authorized.write_text(self.admin.export_public_key().decode())
        self.viewers.write_text(self.viewer.export_public_key().decode())

    def private_file(self, key: asyncssh.SSHKey, name: str) -> Path:
        """The key as an OpenSSH private key file (mode 0600), for `ssh -i`."""
        path = self.dir / name
        path.write_bytes(key.export_private_key())
        path.chmod(0o600)
        return path


@pytest.fixture(autouse=True)
def _quiet_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user themes


@pytest.fixture
def keys(tmp_path) -> Keys:
    (tmp_path / "keys").mkdir()
    make = lambda: asyncssh.generate_private_key("ssh-ed25519")  # noqa: E731
    return Keys(tmp_path / "keys", make(), make(), make())


@pytest.fixture
async def controller(tmp_path) -> AsyncIterator[EmbeddedController]:
    c = await EmbeddedController.open(tmp_path / "state")
    await c.apply(SCENARIO, cluster="cluster-1")
    yield c
    await c.close()


StartServer = Callable[..., Awaitable[SshServer]]


@pytest.fixture
async def start_server(tmp_path, keys, controller) -> AsyncIterator[StartServer]:
    servers: list[SshServer] = []

    async def start(**overrides) -> SshServer:
        shared = overrides.pop("controller", controller)
        settings = SshSettings(authorized_keys=keys.authorized, viewer_keys=keys.viewers, host_key=tmp_path / "ssh" / "host_ed25519_key",
                               listen="127.0.0.1:0", rate_limit=RateLimit(50, 1.0))
        for name, value in overrides.items():
            setattr(settings, name, value)
        server = SshServer(shared, settings)
        servers.append(server)
        await server.start()
        return server

    yield start
    for server in servers:
        await server.stop(grace=3)


async def connect(server: SshServer, key: asyncssh.SSHKey | None, user: str = "alice", **kwargs) -> asyncssh.SSHClientConnection:
    host, port = server.address
    return await asyncssh.connect(host, port, username=user, client_keys=[key] if key else None, known_hosts=None,
                                  agent_path=None, **kwargs)


async def session(server: SshServer, key: asyncssh.SSHKey, size: tuple[int, int], user: str = "alice",
                  **kwargs) -> tuple[asyncssh.SSHClientConnection, Terminal]:
    conn = await connect(server, key, user)
    term = await open_terminal(conn, size, **kwargs)
    return conn, term


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
