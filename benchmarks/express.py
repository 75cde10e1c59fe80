"""The Python cost of one request on the outbound proxy's HTTP/1.1 paths, without
sockets: the real DataPlane's listener protocol, route table, relay and upstream
connection, driven with in-memory transports as uvloop would drive them (a read of
the client's GET, then a read of the whole answer). It leaves out the kernel and
uvloop, which benchmarks/proxy.py measures, and is steady on a busy machine: the
figure to compare changes of the request path with.

    python -m benchmarks.express [--requests 20000] [--repeat 7]
    python -m benchmarks.express --instructions   # exact counts under valgrind's cachegrind

Prints microseconds per request (best of `--repeat`) for: the express lane
(proxy/http1/express.py); the same with an uncapped tap subscriber whose events are
encoded every 100 requests as the controller's stream is (CompactEncoder); and the
general path (a GET the express lane leaves to it: one header it must act on).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import timeit
from collections.abc import Callable

import uvloop

import proxy
from proxy.config import Limits, ListenSettings
from proxy.events import TapFilter
from proxy.http1.client import UpstreamConnection
from proxy.http1.server import HttpServerProtocol
from proxy.main import DataPlane
from proxy.tap import CompactEncoder

EXPRESS_GET = b"GET / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\n\r\n"
GENERAL_GET = b"GET / HTTP/1.1\r\nHost: httpbin.httpbin:8080\r\nTE: trailers\r\n\r\n"
ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 48\r\n\r\n"
          b"Hi, I am from cluster-1 and controlled by mesh!\n")
UPSTREAM = ("127.0.0.1", 9)


class MemoryTransport:
    """What the protocols call on a transport; keeps the last write."""

    def __init__(self, protocol: object) -> None:
        self.protocol = protocol
        self.last = b""

    def write(self, data: bytes) -> None:
        self.last = data

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def get_protocol(self) -> object:
        return self.protocol

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def config() -> dict:
    return {"cluster": "c1", "cluster_key": "default/default/default/c1", "version": 1, "gateway": [],
            "routes": [{"namespace": "httpbin", "name": "httpbin", "port": 8080, "tiers": [[{
                "cluster": "c1", "weight": 100,
                "endpoints": [{"host": UPSTREAM[0], "port": UPSTREAM[1], "cluster": "c1"}]}]]}]}


class Rig:
    """The outbound proxy's DataPlane with one client connection and one idle pooled upstream
    connection, both on in-memory transports."""

    async def __aenter__(self) -> "Rig":
        self.plane = plane = DataPlane(ListenSettings(cluster="c1", outbound="127.0.0.1:0", limits=Limits()))
        plane.live.apply(config(), persist=False)
        await plane.start()
        server = plane.servers["outbound"]
        self.client = client = HttpServerProtocol(server.handler, server.limits, server.connections, server.express)
        self.to_client = MemoryTransport(client)
        client.connection_made(self.to_client)  # type: ignore[arg-type]
        self.upstream = upstream = UpstreamConnection((*UPSTREAM, None, ""), plane.pools._lost)
        upstream.connection_made(MemoryTransport(upstream))  # type: ignore[arg-type]
        upstream.response_done = upstream.request_done = upstream._keep_alive = True  # an idle pooled one
        plane.pools.release(upstream)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.plane.stop(grace_s=0.0)

    def exchange(self, get: bytes) -> Callable[[], None]:
        client, upstream = self.client, self.upstream

        def one() -> None:
            client.data_received(get)
            upstream.data_received(ANSWER)
        return one

    def tapped(self, requests: int) -> Callable[[], None]:
        """`requests` express requests with an uncapped tap subscriber whose events are encoded
        every 100 requests, as the controller's stream is (each time after a round of the
        relay's timer for deferred taps, see proxy/http1/relay.py)."""
        sub = self.plane.tap.subscribe(TapFilter(), buffer=1 << 30)
        encode = CompactEncoder()
        express = self.exchange(EXPRESS_GET)
        relay = self.plane.servers["outbound"].express.__self__.relay  # type: ignore[attr-defined]

        def run() -> None:
            for _ in range(requests // 100):
                for _ in range(100):
                    express()
                relay._open_deferred()  # its timer's round, as every 10 ms (the requests are answered: none is late)
                encode(sub.take())
        return run


async def measure(requests: int, repeat: int) -> dict[str, float]:
    async with Rig() as rig:
        figures = {}
        for name, get in (("express lane", EXPRESS_GET), ("general path", GENERAL_GET)):
            one = rig.exchange(get)
            one()
            assert rig.to_client.last.startswith(b"HTTP/1.1 200 OK\r\n"), rig.to_client.last
            figures[name] = min(timeit.repeat(one, setup="gc.enable()", number=requests, repeat=repeat)) / requests * 1e6
        hundreds = max(1, requests // 100) * 100
        figures["express lane + tap subscriber"] = min(
            timeit.repeat(rig.tapped(hundreds), setup="gc.enable()", number=1, repeat=repeat)) / hundreds * 1e6
        return figures


async def run_once(kind: str, requests: int) -> None:
    """`requests` of `kind` (express, tap), once: what `--instructions` counts under cachegrind."""
    async with Rig() as rig:
        for _ in range(5):  # warm the caches of routes and series
            rig.exchange(EXPRESS_GET)()
        if kind == "tap":
            rig.tapped(requests)()
        else:
            one = rig.exchange(EXPRESS_GET)
            for _ in range(requests):
                one()


def instructions(kind: str) -> int:
    """Instructions per request of `kind`, exactly: cachegrind's count for 6,000 requests less
    its count for 1,000, over 5,000."""
    counts = []
    for requests in (1000, 6000):
        out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                              sys.executable, "-m", "benchmarks.express", "--once", kind, "--requests", str(requests)],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": "0"}).stderr  # the same dict layouts each run
        counts.append(int(re.search(r"I\s+refs:\s+([\d,]+)", out).group(1).replace(",", "")))
    return (counts[1] - counts[0]) // 5000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--instructions", action="store_true",
                   help="count the instructions of an express request, and with a tap subscriber (needs valgrind)")
    p.add_argument("--once", choices=("express", "tap"), help=argparse.SUPPRESS)  # what --instructions counts
    args = p.parse_args(argv)
    if args.once:
        uvloop.run(run_once(args.once, args.requests))
        return 0
    if args.instructions:
        if shutil.which("valgrind") is None:
            raise SystemExit("benchmarks/express.py --instructions needs valgrind: run `make tools`")
        express, tap = instructions("express"), instructions("tap")
        print(f"Instructions per request on the outbound proxy (cachegrind, exact; request path: {proxy.FORM}):")
        print(f"  express lane                     {express:7,d}")
        print(f"  express lane + tap subscriber    {tap:7,d}  (+{tap - express:,d}, +{(tap - express) / express:.0%})")
        return 0
    figures = uvloop.run(measure(args.requests, args.repeat))
    print(f"Python per request on the outbound proxy (no sockets; best of {args.repeat} x {args.requests}; "
          f"request path: {proxy.FORM}):")
    for name, us in figures.items():
        print(f"  {name:<32} {us:6.1f} us")
    base = figures["express lane"]
    print(f"  the tap subscriber adds {figures['express lane + tap subscriber'] - base:.1f} us; "
          f"the general path costs {figures['general path'] / base:.1f}x the express lane")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
