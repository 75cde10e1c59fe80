from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from controller.demo.run import DemoInfo, run_demo
from controller.demo.scenarios import DEFAULT_SCENARIO, load_scenario, scenario_names
from controller.headless import configure_logging
from controller.statefile import resolve_state_dir
from meshtui.cli import output

NAME = "demo"
HELP = "a whole federation on this machine (controller, proxies, workloads, traffic) and the TUI"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO, metavar="NAME",
                        help=f"a bundled scenario ({', '.join(scenario_names())}) or a scenario file (default: {DEFAULT_SCENARIO})")
    parser.add_argument("--no-tui", action="store_true", help="run headless until SIGINT/SIGTERM")
    parser.add_argument("--api", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="where the controller API listens (default: a free port, recorded in the state dir)")
    parser.add_argument("--loopback-base", metavar="127.X",
                        help="first two octets of the clusters' loopback ranges for a new federation "
                             "(default 127.0, or a random free one if taken)")
    parser.add_argument("--list", action="store_true", help="list the bundled scenarios and exit")


def summary(info: DemoInfo) -> str:
    rows = [[name, st.get("outbound", {}).get("address", "-"), st.get("gateway", {}).get("address", "-"),
             st.get("admin", {}).get("address", "-"), "up" if st.get("outbound", {}).get("up") else "down"]
            for name, st in sorted(info.clusters.items())]
    first = next(iter(sorted(info.clusters)), "CLUSTER")
    return "\n".join([
        f"meshtui demo: scenario {info.scenario.name} ({'new federation' if info.applied else 'resumed'}), state {info.state_dir}",
        f"API {info.api_url}; in another terminal: export MESHTUI_STATE={info.state_dir}",
        "",
        output.table(["CLUSTER", "OUTBOUND", "GATEWAY", "ADMIN", "PROXY"], rows),
        "",
        f"try: meshtui get serviceimports -A; meshtui stat; meshtui tap --max 10; meshtui curl --from {first} http://SVC.NS:PORT/",
    ])


async def run(args: argparse.Namespace) -> int:
    if args.list:
        for name in scenario_names():
            print(f"{name}: {load_scenario(name).description}")
        return 0
    scenario = load_scenario(args.scenario)
    # an explicit --state or $MESHTUI_STATE is used as is; the bare default gets a folder per scenario
    # so that a demo never mixes with the federation an operator keeps in the default state dir
    explicit = getattr(args, "state", None) or os.environ.get("MESHTUI_STATE")
    state_dir = resolve_state_dir(explicit) if explicit else resolve_state_dir(None) / f"demo-{scenario.name}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    ui = None
    if args.no_tui:
        configure_logging("plain")
        loop.add_signal_handler(signal.SIGINT, stop.set)
    else:
        from meshtui.tui.app import MeshApp

        async def ui(controller) -> None:
            await MeshApp(controller, read_only=False, user="demo").run_async()

    for sig in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal stops the demo gracefully too
        loop.add_signal_handler(sig, stop.set)

    def ready(info: DemoInfo) -> None:
        if args.no_tui:
            print(summary(info), flush=True)
            print("ready", flush=True)

    await run_demo(state_dir, scenario, stop=stop, api=args.api, loopback_base=args.loopback_base, ui=ui, on_ready=ready)
    if args.no_tui:
        print("meshtui demo: stopped", file=sys.stderr)
    return 0
