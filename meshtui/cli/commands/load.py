from __future__ import annotations

import argparse
import json

import aiohttp

from controller.demo.client import LoadReport, outbound_address, run_load, split_url
from meshtui.cli import output
from meshtui.cli.commands.curl import parse_headers, read_body
from meshtui.cli.connect import open_controller
from meshtui.cli.errors import UsageError

NAME = "load"
HELP = "built-in load generator: open-loop requests from inside a cluster, with a latency summary"
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}


def duration(text: str) -> float:
    """'10', '10s', '500ms', '1m' -> seconds."""
    for unit in ("ms", "s", "m"):
        if text.endswith(unit):
            number, scale = text[: -len(unit)], UNITS[unit]
            break
    else:
        number, scale = text, 1.0
    try:
        value = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration like 10s, 500ms or 1m, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="from_cluster", required=True, metavar="CLUSTER", help="the client's cluster")
    parser.add_argument("url", metavar="URL", help="http://svc.ns[:port]/path")
    parser.add_argument("--rps", type=float, default=10.0, help="requests per second (default 10)")
    parser.add_argument("--duration", type=duration, default=10.0, metavar="S", help="how long, e.g. 10s, 1m (default 10s)")
    parser.add_argument("--concurrency", type=int, default=50, metavar="N", help="most requests in flight (default 50)")
    parser.add_argument("-X", "--request", dest="method", default="GET", metavar="METHOD")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'")
    parser.add_argument("-d", "--data", metavar="DATA", help="request body (@FILE reads a file)")
    parser.add_argument("--as", dest="service_account", default="", metavar="SA", help="the client's service account")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}ms"


def report_text(url: str, cluster: str, r: LoadReport) -> str:
    rate = "-" if r.success_rate is None else f"{100 * r.success_rate:.2f}%"
    lines = [
        f"{url} from {cluster}: {r.sent} requests in {r.elapsed_s:.1f}s ({r.sent / r.elapsed_s if r.elapsed_s else 0:.1f} rps), success {rate}",
        f"latency p50 {_ms(r.quantile(0.5))}  p95 {_ms(r.quantile(0.95))}  p99 {_ms(r.quantile(0.99))}",
        "statuses " + (" ".join(f"{code}={n}" for code, n in sorted(r.statuses.items())) or "-"),
    ]
    if r.errors:
        lines.append("no answer " + "; ".join(f"{why} x{n}" for why, n in r.errors.most_common()))
    if r.bodies:
        lines += ["", output.table(["COUNT", "ANSWER"], [[str(n), body] for body, n in r.bodies.most_common()])]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    if args.rps <= 0:
        raise UsageError("--rps must be positive")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    split_url(args.url)
    headers = parse_headers(args.header)
    body = read_body(args.data)
    async with open_controller(args) as controller:
        outbound = outbound_address(await controller.get("Cluster", args.from_cluster))
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        report = await run_load(session, outbound, args.url, rps=args.rps, duration_s=args.duration,
                                concurrency=args.concurrency, method=args.method.upper(), headers=headers,
                                body=body, service_account=args.service_account)
    if args.output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report_text(args.url, args.from_cluster, report))
    return 0
