"""What every sample app shares: its command line (`--listen`, `--message`, `--cluster`),
its default answer, and its life as a process (print `ready`, serve until SIGTERM or SIGINT,
exit 1 when it cannot listen and 2 on a bad option value)."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

from proxy.http1.runtime import install_uvloop, split_hostport


def sample_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    p.add_argument("--listen", required=True, help="HOST:PORT")
    p.add_argument("--message", default=None, help="answer text (default: Hi, I am from CLUSTER!)")
    p.add_argument("--cluster", default="", help="cluster the workload belongs to")
    return p


def parse(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = p.parse_args(argv)
    try:
        split_hostport(args.listen)
    except ValueError as exc:
        p.error(str(exc))
    return args


def message_of(args: argparse.Namespace) -> str:
    return args.message if args.message is not None else f"Hi, I am from {args.cluster or 'nowhere'}!"


async def until_stopped() -> None:
    """Say `ready` (the supervisor waits for it) and wait for SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()


def run_sample(name: str, args: argparse.Namespace, serve: Callable[[], Awaitable[None]], *,
               uvloop: bool = True) -> int:
    """Run `serve()` to its end; the process's exit status."""
    if uvloop:
        install_uvloop()
    try:
        asyncio.run(serve())
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{name}: cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
