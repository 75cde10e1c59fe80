"""Run every benchmark one after another, each in its own process, with short
defaults (`make bench`); each prints its own figures and ratios. A failing
benchmark is reported and the others still run; the exit status is 1 if any
failed.

    python -m benchmarks.run_all [--only proxy,h2] [--long]

`--long` uses each script's own defaults (the soak and the TUI benchmark
run 10 minutes each) instead of the short ones below.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

# name -> arguments for a short run (about a minute each); `--long` drops them
SHORT_RUNS: dict[str, list[str]] = {
    "propagation": [],
    "proxy": ["--duration", "4", "--rounds", "2"],
    "express": ["--requests", "5000", "--repeat", "3"],
    "h2": ["--duration", "5"],
    "tui": ["--duration", "20"],
    "ssh": ["--counts", "1,2,4", "--process-counts", "1,2", "--rounds", "10"],
    "scale": ["--no-tui"],
    "soak": ["--duration", "60"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(SHORT_RUNS)}")
    parser.add_argument("--long", action="store_true", help="each benchmark's own (longer) defaults")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SHORT_RUNS)
    unknown = [n for n in names if n not in SHORT_RUNS]
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(SHORT_RUNS)}")
    failed: list[str] = []
    for name in names:
        command = [sys.executable, "-m", f"benchmarks.{name}", *([] if args.long else SHORT_RUNS[name])]
        print(f"\n=== {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        code = subprocess.call(command)
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    print(f"\nall {len(names)} benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
