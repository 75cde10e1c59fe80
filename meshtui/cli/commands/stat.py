from __future__ import annotations

import argparse
import json

from controller.interface import GoldenRow
from meshtui.cli import output
from meshtui.cli.connect import open_controller

NAME = "stat"
HELP = "golden metrics (success rate, RPS, latency) per service per cluster, like linkerd viz stat"
SCOPES = ("service", "cluster", "edge")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", help="rows of this cluster only (edges from or to it)")
    parser.add_argument("--by", dest="scope", choices=SCOPES, default="service",
                        help="service (default), cluster, or edge (source -> destination cluster)")
    parser.add_argument("--window", choices=("10s", "1m"), default="10s")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.0f}ms" if v >= 10 else f"{v:.1f}ms")


def selected(rows: list[GoldenRow], scope: str, cluster: str | None) -> list[GoldenRow]:
    return [r for r in rows if r.scope == scope
            and (not cluster or cluster in ((r.src_cluster, r.dst_cluster) if scope == "edge" else (r.cluster,)))]


def stat_table(rows: list[GoldenRow], scope: str) -> str:
    where = {"service": ["CLUSTER", "NAMESPACE", "SERVICE"], "cluster": ["CLUSTER"],
             "edge": ["SRC", "DST", "NAMESPACE", "SERVICE"]}[scope]

    def place(r: GoldenRow) -> list[str]:
        return {"service": [r.cluster, r.namespace, r.service], "cluster": [r.cluster],
                "edge": [r.src_cluster, r.dst_cluster, r.namespace, r.service]}[scope]

    return output.table(where + ["SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"],
                        [place(r) + [_pct(r.success_rate), f"{r.rps:.1f}", _ms(r.p50_ms), _ms(r.p95_ms), _ms(r.p99_ms)]
                         for r in rows])


async def run(args: argparse.Namespace) -> int:
    async with open_controller(args) as controller:
        rows = selected(await controller.golden(args.window), args.scope, args.cluster)
    if args.output == "json":
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    elif rows:
        print(stat_table(rows, args.scope))
    else:
        print(f"No traffic seen in the last {args.window}.")
    return 0
