from __future__ import annotations

import argparse
import json

from meshtui.cli import output
from meshtui.cli.connect import open_controller

NAME = "check"
HELP = "health checks of the federation; exit 1 if any fails"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


async def run(args: argparse.Namespace) -> int:
    async with open_controller(args) as controller:
        results = await controller.checks()
    print(json.dumps(output.checks_json(results), indent=2) if args.output == "json" else output.checks_text(results))
    return 0 if output.checks_passed(results) else 1
