from __future__ import annotations

import argparse
import json
import sys
from contextlib import aclosing

from controller.interface import TapDropped, TapEvent, TapFilter
from meshtui.cli.connect import open_controller

NAME = "tap"
HELP = "stream live requests of every proxy (like linkerd viz tap)"
PROXY_OF = {"outbound": "out", "gateway": "gw", "inbound": "in"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default="", help="requests seen in, or sent to, this cluster")
    parser.add_argument("--to", dest="service", default="", metavar="SVC", help="destination service")
    parser.add_argument("-n", "--namespace", default="", help="destination namespace")
    parser.add_argument("--method", default="", help="HTTP method")
    parser.add_argument("--path", default="", metavar="PREFIX", help="path prefix")
    parser.add_argument("--authority", default="", help="exact :authority (Host)")
    parser.add_argument("--max-rps", type=float, default=0.0, metavar="R", help="at most R events per second per proxy")
    parser.add_argument("--max", type=int, default=0, metavar="N", help="stop after N events")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text",
                        help="text (linkerd-style lines) or json (one object per line)")


def tap_line(e: TapEvent) -> str:
    """linkerd viz tap's line shape: req/rsp/end, id, proxy direction, source and destination."""
    dst = e.dst_cluster or "-"
    if e.dst_endpoint:
        dst += f"/{e.dst_endpoint}"
    head = (f"id={e.id} proxy={PROXY_OF.get(e.direction, e.direction)} cluster={e.cluster} "
            f"src={e.src_cluster or '-'} dst={dst} tls={str(e.tls).lower()}")
    if e.kind == "request_init":
        return f"req {head} :method={e.method} :authority={e.authority} :path={e.path}"
    if e.kind == "response_init":
        return f"rsp {head} :status={e.status} latency={round(e.latency_ms * 1000)}µs"
    tail = f"end {head} duration={round(e.duration_ms * 1000)}µs response-length={e.bytes}B"
    if e.grpc_status is not None:
        tail += f" grpc-status={e.grpc_status}"
    if e.error:
        tail += f" error={e.error!r}"
    return tail


async def run(args: argparse.Namespace) -> int:
    flt = TapFilter(cluster=args.cluster, namespace=args.namespace, service=args.service, method=args.method,
                    path_prefix=args.path, authority=args.authority, max_rps=args.max_rps)
    seen = 0
    async with open_controller(args) as controller:
        async with aclosing(controller.tap(flt)) as events:
            async for e in events:
                if isinstance(e, TapDropped):
                    if args.output == "json":
                        print(json.dumps(e.to_dict()), flush=True)
                    else:
                        print(f"dropped {e.dropped} events: this reader is too slow", file=sys.stderr, flush=True)
                    continue
                print(json.dumps(e.to_dict()) if args.output == "json" else tap_line(e), flush=True)
                seen += 1
                if args.max and seen >= args.max:
                    break
    return 0
