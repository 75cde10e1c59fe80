from __future__ import annotations

import argparse
import sys

import aiohttp

from controller.demo.client import outbound_address, send, split_url
from controller.errors import Unavailable
from meshtui.cli.connect import open_controller
from meshtui.cli.errors import UsageError

NAME = "curl"
HELP = "send one request as a client inside a cluster would (through its outbound proxy)"
EXIT_NO_ANSWER = 7  # curl's "failed to connect"
EXIT_HTTP_ERROR = 22  # curl -f's "HTTP error"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="from_cluster", required=True, metavar="CLUSTER", help="the client's cluster")
    parser.add_argument("url", metavar="URL", help="http://svc.ns[:port]/path (also svc.ns.svc.cluster.local, svc-<cluster>.ns)")
    parser.add_argument("-X", "--request", dest="method", metavar="METHOD", help="method (default GET, POST with -d)")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="extra header (repeatable)")
    parser.add_argument("-d", "--data", metavar="DATA", help="request body (@FILE reads a file)")
    parser.add_argument("--as", dest="service_account", default="", metavar="SA", help="the client's service account")
    parser.add_argument("-f", "--fail", action="store_true", help="on a status >= 400 print nothing and exit 22")
    parser.add_argument("-i", "--include", action="store_true", help="print the status line and headers before the body")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the request and response heads on stderr")


def parse_headers(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for h in values:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"-H {h!r}: expected 'NAME: VALUE'")
        out.append((name.strip(), value.strip()))
    return out


def read_body(data: str | None) -> bytes | None:
    if data is None:
        return None
    if data.startswith("@"):
        try:
            with open(data[1:], "rb") as f:
                return f.read()
        except OSError as e:
            raise UsageError(f"-d {data}: {e.strerror or e}") from None
    return data.encode()


async def run(args: argparse.Namespace) -> int:
    headers = parse_headers(args.header)
    body = read_body(args.data)
    method = (args.method or ("POST" if body is not None else "GET")).upper()
    authority, target = split_url(args.url)
    async with open_controller(args) as controller:
        outbound = outbound_address(await controller.get("Cluster", args.from_cluster))
    if args.verbose:
        print(f"* via {args.from_cluster}'s outbound proxy {outbound}", file=sys.stderr)
        print(f"> {method} {target} HTTP/1.1\n> Host: {authority}", file=sys.stderr)
        for k, v in headers:
            print(f"> {k}: {v}", file=sys.stderr)
    async with aiohttp.ClientSession() as session:
        try:
            answer = await send(session, outbound, args.url, method=method, headers=headers, body=body,
                                service_account=args.service_account)
        except Unavailable as e:
            print(f"curl: {e.message}", file=sys.stderr)
            return EXIT_NO_ANSWER
    head = [f"HTTP/1.1 {answer.status} {answer.reason}"] + [f"{k}: {v}" for k, v in answer.headers]
    if args.verbose:
        print("\n".join(f"< {line}" for line in head), file=sys.stderr)
    if args.fail and answer.status >= 400:
        print(f"curl: (22) The requested URL returned error: {answer.status}", file=sys.stderr)
        return EXIT_HTTP_ERROR
    if args.include:
        sys.stdout.write("\r\n".join(head) + "\r\n\r\n")
        sys.stdout.flush()
    sys.stdout.buffer.write(answer.body)
    sys.stdout.buffer.flush()
    return 0
