"""`meshtui`: the console script. Parses the command line, runs one command, turns failures into one
line on stderr (exit 1; usage errors exit 2). With no command, opens the TUI."""
from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from typing import Awaitable, Callable

from controller.errors import MeshError
from meshtui.cli.commands import COMMANDS
from meshtui.cli.connect import open_controller
from meshtui.cli.errors import UsageError

Run = Callable[[argparse.Namespace], Awaitable[int]]


def add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """Options every command takes, before or after its name. Subcommands add them with
    default=SUPPRESS so a value given before the name is not reset."""
    g = parser.add_argument_group("global options")
    g.add_argument("--state", metavar="DIR", default=default,
                   help="state dir (default: $MESHTUI_STATE, else $XDG_STATE_HOME/meshtui, else ~/.local/state/meshtui)")
    g.add_argument("--controller", metavar="URL", default=default,
                   help="controller API (default: $MESHTUI_CONTROLLER, else the one recorded in the state dir, else in-process)")
    g.add_argument("--token", metavar="TOKEN", default=default, help="API token (default: $MESHTUI_TOKEN, else the state dir's admin token)")
    g.add_argument("--cacert", metavar="FILE", default=default, help="CA bundle to verify an https controller")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshtui", description="One terminal view of a federation of service-mesh clusters.")
    add_global_options(parser, None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"meshtui.cli.commands.{name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        add_global_options(p, argparse.SUPPRESS)
        p.set_defaults(run=module.run)
    return parser


async def open_tui(args: argparse.Namespace) -> int:
    """`meshtui` with no command: the TUI on this process's loop, over the state dir's controller."""
    from meshtui.tui.app import MeshApp  # Textual is imported only when the TUI is wanted

    async with open_controller(args) as controller:
        await MeshApp(controller, read_only=controller.read_only).run_async()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Run = getattr(args, "run", open_tui)
    try:
        return asyncio.run(run(args))
    except UsageError as e:
        print(f"meshtui: error: {e}", file=sys.stderr)
        return 2
    except MeshError as e:
        print(f"error: {e.message}", file=sys.stderr)
    except BrokenPipeError:  # `meshtui get ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # e.g. a state dir that cannot be created
        print(f"error: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1
