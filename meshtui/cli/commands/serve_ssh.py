from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from controller.api import parse_listen
from controller.errors import MeshError
from controller.headless import configure_logging
from meshtui.cli.connect import open_controller, state_dir_of
from meshtui.cli.errors import UsageError
from meshtui.ssh.ratelimit import RateLimit
from meshtui.ssh.settings import SshSettings

NAME = "serve-ssh"
HELP = "serve the TUI over SSH to every client with an authorized key (viewers read-only)"

log = logging.getLogger("meshtui.ssh")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:2222", metavar="HOST:PORT", help="where to listen (default 127.0.0.1:2222)")
    parser.add_argument("--authorized-keys", metavar="FILE",
                        help="public keys with full access, authorized_keys format; re-read when it changes or on SIGHUP "
                             "(default <state>/ssh/authorized_keys)")
    parser.add_argument("--viewer-keys", metavar="FILE", help="public keys whose sessions are read-only (default <state>/ssh/viewer_keys)")
    parser.add_argument("--host-key", metavar="FILE", help="the server's ed25519 host key, made on first start (default <state>/ssh/host_ed25519_key)")
    parser.add_argument("--max-sessions", type=int, default=16, metavar="N", help="sessions at once (default 16)")
    parser.add_argument("--idle-timeout", type=float, default=900.0, metavar="SECONDS",
                        help="close a session after this long without a key press; 0 = never (default 900)")
    parser.add_argument("--rate-limit", default="10/60", metavar="N/SECONDS",
                        help="connection attempts per client address: N at once, refilled over SECONDS (default 10/60)")
    parser.add_argument("--log-format", choices=("plain", "json"), default="plain")


def settings_of(args: argparse.Namespace) -> SshSettings:
    try:
        parse_listen(args.listen)
        rate = RateLimit.parse(args.rate_limit)
    except ValueError as e:
        raise UsageError(f"--listen/--rate-limit: {e}") from None
    if args.max_sessions < 1:
        raise UsageError("--max-sessions must be at least 1")
    if args.idle_timeout < 0:
        raise UsageError("--idle-timeout must be 0 (never) or more")
    ssh_dir = state_dir_of(args) / "ssh"
    settings = SshSettings(
        authorized_keys=Path(args.authorized_keys or ssh_dir / "authorized_keys"),
        viewer_keys=Path(args.viewer_keys or ssh_dir / "viewer_keys"),
        host_key=Path(args.host_key or ssh_dir / "host_ed25519_key"),
        listen=args.listen, max_sessions=args.max_sessions, idle_timeout=args.idle_timeout, rate_limit=rate,
    )
    if not settings.authorized_keys.exists() and not settings.viewer_keys.exists():  # type: ignore[union-attr]
        raise MeshError(f"no keys to admit: create {settings.authorized_keys} (full access) or {settings.viewer_keys} "
                        "(read-only) with one public key per line, as in ~/.ssh/authorized_keys")
    return settings


async def run(args: argparse.Namespace) -> int:
    from meshtui.ssh.server import SshServer  # Textual and asyncssh load only for this command

    settings = settings_of(args)
    configure_logging(args.log_format)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    async with open_controller(args) as controller:
        server = SshServer(controller, settings)
        try:
            await server.start()
        except OSError as e:
            raise MeshError(f"cannot listen on {settings.listen}: {e.strerror or e}") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, server.reload_keys)
        try:
            await stop.wait()
            log.info("stopping: ending %d session(s)", len(server.sessions))
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await server.stop()
    log.info("stopped")
    return 0
