from __future__ import annotations

import argparse

from meshtui.cli.connect import open_controller

NAME = "attach"
HELP = "the TUI against a remote controller's API (live; reconnects when the controller restarts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="the controller's API, e.g. https://mesh.example:7443 (--cacert to trust its CA)")
    parser.add_argument("--readonly", action="store_true", help="refuse every write in this session, whatever the token allows")


async def run(args: argparse.Namespace) -> int:
    from meshtui.ssh.readonly import ReadOnlyController
    from meshtui.tui.app import MeshApp  # Textual is imported only when the TUI is wanted

    args.controller = args.url  # open_controller then takes --token/$MESHTUI_TOKEN and --cacert as for any command
    async with open_controller(args) as controller:
        view = ReadOnlyController(controller, "this session (--readonly)") if args.readonly else controller
        await MeshApp(view, read_only=view.read_only).run_async()
    return 0
