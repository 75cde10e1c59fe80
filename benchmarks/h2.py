"""HTTP/2 and gRPC data-plane benchmark: direct to the backend vs through the outbound proxy,
all on loopback, in the same run; plus the protocol-engine measurement behind the choice of
ngh2 (libnghttp2) over pure-Python h2.

    python -m benchmarks.h2 [--duration 5] [--clients 8] [--streams 16] [--grpc-calls 2000]
                            [--grpc-concurrency 16]

- engine: one gRPC-shaped unary exchange (request head + body, response head + body +
  trailers, both roles, in memory) with ngh2 and, when installed, with h2.
- HTTP/2: h2load (Debian's nghttp2-client, `make tools`) against the h2-echo sample app,
  `--clients` connections with `--streams` concurrent streams each; requests/s, and p50/p99
  from h2load's per-request log.
- gRPC: a grpcio client, `--grpc-concurrency` concurrent unary calls over one channel to the
  grpc-echo sample app; calls/s, p50/p99.
The proxy runs as its own process (`python -m proxy`), as do the backends; the load
generators share the machine's cores with them, so compare ratios rather than absolutes.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import percentile
from proxy.config import BackendGroup, Endpoint, ProxyConfig, ServiceRoute

ROOT = Path(__file__).resolve().parents[1]
H2_AUTHORITY = "h2-echo.bench:8081"
GRPC_AUTHORITY = "grpc-echo.bench:9090"
_REQ = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/meshtui.Echo/Say"),
        (b":authority", GRPC_AUTHORITY.encode()), (b"content-type", b"application/grpc"), (b"te", b"trailers"),
        (b"grpc-timeout", b"5S"), (b"user-agent", b"grpc-python/1.85")]
_RESP = [(b":status", b"200"), (b"content-type", b"application/grpc")]
_TRAILERS = [(b"grpc-status", b"0"), (b"grpc-message", b"")]
_BODY = b"\x00\x00\x00\x00\x10" + b"x" * 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- protocol engines ---------------------------------------------------------------------

def engine_ngh2(n: int) -> float:
    import ngh2
    c, s = ngh2.Connection(ngh2.Role.CLIENT), ngh2.Connection(ngh2.Role.SERVER)
    c.initiate_connection()
    s.initiate_connection()
    s.receive_data(c.data_to_send())
    c.receive_data(s.data_to_send())
    s.receive_data(c.data_to_send())
    s.events(), c.events()
    t = time.perf_counter()
    for _ in range(n):
        sid = c.send_request(_REQ)
        c.send_data(sid, _BODY, end_stream=True)
        s.receive_data(c.data_to_send())
        s.events()
        s.send_response(sid, _RESP)
        s.send_data(sid, _BODY)
        s.send_trailers(sid, _TRAILERS)
        c.receive_data(s.data_to_send())
        c.events()
        s.receive_data(c.data_to_send())
        s.events()
    return (time.perf_counter() - t) / n * 1e6


def engine_h2(n: int) -> float:
    import h2.config
    import h2.connection
    import h2.events
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    s = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    c.initiate_connection()
    s.initiate_connection()
    s.receive_data(c.data_to_send())
    c.receive_data(s.data_to_send())
    s.receive_data(c.data_to_send())
    t = time.perf_counter()
    for _ in range(n):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, _REQ)
        c.send_data(sid, _BODY, end_stream=True)
        for ev in s.receive_data(c.data_to_send()):
            if isinstance(ev, h2.events.DataReceived):
                s.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        s.send_headers(sid, _RESP)
        s.send_data(sid, _BODY)
        s.send_headers(sid, _TRAILERS, end_stream=True)
        for ev in c.receive_data(s.data_to_send()):
            if isinstance(ev, h2.events.DataReceived):
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        s.receive_data(c.data_to_send())
    return (time.perf_counter() - t) / n * 1e6


def engines() -> dict[str, float]:
    out = {}
    for name, fn, n in (("ngh2 (libnghttp2)", engine_ngh2, 20000), ("h2 (pure Python)", engine_h2, 2000)):
        try:
            fn(n // 10)
        except ImportError:
            continue
        out[name] = min(fn(n) for _ in range(3))
    return out


# -- processes ------------------------------------------------------------------------------

def start(argv: list[str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=open(log, "ab"), start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        stop(proc)
        raise SystemExit(f"{' '.join(argv)} did not start: see {log}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def proxy_config(h2_port: int, grpc_port: int) -> dict:
    def route(name: str, port: int, protocol: str, backend: int) -> ServiceRoute:
        ep = Endpoint("127.0.0.1", backend, "bench")
        return ServiceRoute("bench", name, port, protocol, "Locality", ((BackendGroup("bench", 100, (ep,)),),))
    return ProxyConfig("bench", "default/default/default/bench", 1,
                       routes=(route("h2-echo", 8081, "http2", h2_port), route("grpc-echo", 9090, "grpc", grpc_port))
                       ).to_dict()


# -- load ---------------------------------------------------------------------------------------

def h2load(address: str, args: argparse.Namespace, tmp: Path, name: str) -> dict:
    log = tmp / f"h2load-{name}.log"
    cmd = ["h2load", "-c", str(args.clients), "-m", str(args.streams), "-D", str(args.duration),
           "--warm-up-time=1", "--log-file", str(log), "-H", f":authority: {H2_AUTHORITY}", f"http://{address}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60).stdout
    rps = next((float(line.split(",")[1].split()[0]) for line in out.splitlines() if line.startswith("finished in")),
               float("nan"))
    ok = next((line for line in out.splitlines() if line.startswith("requests:")), "")
    times = [int(line.split("\t")[2]) / 1000.0 for line in log.read_text().splitlines() if line.count("\t") >= 2]
    return {"rps": rps, "p50": percentile(times, 0.5), "p99": percentile(times, 0.99), "requests": ok.strip()}


async def grpc_load(address: str, authority: str, calls: int, concurrency: int) -> dict:
    import grpc
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address, options=[("grpc.default_authority", authority)]) as ch:
        say = ch.unary_unary("/meshtui.Echo/Say")
        for _ in range(100):
            await say(b"warm-up", timeout=10)
        remaining = calls

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t = time.perf_counter()
                await say(b"0123456789abcdef", timeout=10)
                latencies.append((time.perf_counter() - t) * 1000.0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"rps": calls / elapsed, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


def row(name: str, r: dict, ref: dict | None) -> str:
    ratio = f"{r['rps'] / ref['rps']:.2f}x" if ref else "1.00x"
    return f"  {name:<28} {r['rps']:>10.0f} req/s   p50 {r['p50']:7.2f} ms   p99 {r['p99']:7.2f} ms   {ratio}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.h2", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=5, help="seconds of h2load per target")
    p.add_argument("--clients", type=int, default=8, help="h2load connections")
    p.add_argument("--streams", type=int, default=16, help="h2load concurrent streams per connection")
    p.add_argument("--grpc-calls", type=int, default=2000)
    p.add_argument("--grpc-concurrency", type=int, default=16)
    args = p.parse_args(argv)

    print("protocol engine, one unary gRPC exchange (both roles, in memory):")
    measured = engines()
    for name, us in measured.items():
        print(f"  {name:<20} {us:8.1f} µs")
    if len(measured) == 2:
        a, b = measured.values()
        print(f"  ngh2 is {b / a:.0f}x faster")

    with tempfile.TemporaryDirectory(prefix="meshtui-bench-h2-") as d:
        tmp = Path(d)
        h2_port, grpc_port, proxy_port = free_port(), free_port(), free_port()
        (tmp / "config.json").write_text(json.dumps(proxy_config(h2_port, grpc_port)))
        py = sys.executable
        procs = [
            start([py, "-m", "proxy.samples.h2_echo", "--listen", f"127.0.0.1:{h2_port}", "--message", "hi"],
                  tmp / "h2echo.log"),
            start([py, "-m", "proxy.samples.grpc_echo", "--listen", f"127.0.0.1:{grpc_port}", "--message", "hi"],
                  tmp / "grpcecho.log"),
            start([py, "-m", "proxy", "--cluster", "bench", "--outbound", f"127.0.0.1:{proxy_port}",
                   "--config-file", str(tmp / "config.json"), "--log-level", "WARNING"], tmp / "proxy.log"),
        ]
        try:
            if shutil.which("h2load"):
                print(f"\nHTTP/2 (h2load, {args.clients} connections x {args.streams} streams, {args.duration} s):")
                direct = h2load(f"127.0.0.1:{h2_port}", args, tmp, "direct")
                proxied = h2load(f"127.0.0.1:{proxy_port}", args, tmp, "proxy")
                print(row("direct to h2-echo", direct, None))
                print(row("through the outbound proxy", proxied, direct))
                print(f"  ({direct['requests']} | {proxied['requests']})")
            else:
                print("\nHTTP/2: h2load not found (sh .ci/install-tools installs nghttp2-client); skipped")
            print(f"\ngRPC (grpcio, {args.grpc_calls} unary calls, {args.grpc_concurrency} concurrent, one channel):")
            direct = asyncio.run(grpc_load(f"127.0.0.1:{grpc_port}", GRPC_AUTHORITY, args.grpc_calls,
                                           args.grpc_concurrency))
            proxied = asyncio.run(grpc_load(f"127.0.0.1:{proxy_port}", GRPC_AUTHORITY, args.grpc_calls,
                                            args.grpc_concurrency))
            print(row("direct to grpc-echo", direct, None))
            print(row("through the outbound proxy", proxied, direct))
        finally:
            for proc in procs:
                stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
