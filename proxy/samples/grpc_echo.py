"""The grpc-echo sample app (Workload `app: grpc-echo`): a real gRPC server (grpcio) on
plain HTTP/2, with messages as raw bytes (no generated code):

    /meshtui.Echo/Say     unary: answers "<message>|<request>"
    /meshtui.Echo/Count   server-streaming: the request is a number n; answers n messages
                          "<message>|<i>", one every `--stream-interval-ms`
    /meshtui.Echo/Fail    unary: the request is a gRPC status code; fails with it

    python -m proxy.samples.grpc_echo --listen 127.0.0.1:9090 --message "Hi" \
        [--error-rate 0.1] [--latency-ms 5] [--cluster cluster-1]

`--error-rate` fails that share of Say calls with INTERNAL; `--latency-ms` delays each
answer. Prints `ready` on stdout once listening.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys

import grpc

from proxy.http1.runtime import split_hostport
from proxy.samples.app import message_of, parse, run_sample, sample_parser, until_stopped

SERVICE = "meshtui.Echo"
MAX_COUNT = 100_000


def _bytes(b: bytes) -> bytes:
    return b


class Echo:
    def __init__(self, message: str, *, error_rate: float = 0.0, latency_ms: float = 0.0,
                 stream_interval_ms: float = 0.0) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"--error-rate must be within [0, 1], got {error_rate}")
        if latency_ms < 0 or stream_interval_ms < 0:
            raise ValueError("grpc-echo: --latency-ms and --stream-interval-ms must be >= 0")
        self.message = message.encode()
        self.error_rate = error_rate
        self.delay = latency_ms / 1000.0
        self.interval = stream_interval_ms / 1000.0

    async def say(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error_rate and random.random() < self.error_rate:
            await context.abort(grpc.StatusCode.INTERNAL, "injected error")
        return self.message + b"|" + request

    async def count(self, request: bytes, context: grpc.aio.ServicerContext):
        try:
            n = int(request)
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Count wants a number, got {request[:40]!r}")
        if not 0 <= n <= MAX_COUNT:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Count wants 0..{MAX_COUNT}, got {n}")
        if self.delay:
            await asyncio.sleep(self.delay)
        for i in range(n):
            if i and self.interval:
                await asyncio.sleep(self.interval)
            yield self.message + b"|%d" % i

    async def fail(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        codes = {c.value[0]: c for c in grpc.StatusCode}
        code = codes.get(int(request)) if request.isdigit() else None
        if code is None or code is grpc.StatusCode.OK:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Fail wants a non-zero status code, got {request[:40]!r}")
        await context.abort(code, f"failing with {code.name} as asked")
        return b""

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Say": grpc.unary_unary_rpc_method_handler(self.say, _bytes, _bytes),
            "Count": grpc.unary_stream_rpc_method_handler(self.count, _bytes, _bytes),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail, _bytes, _bytes),
        })


async def serve_grpc_echo(host: str, port: int, *, message: str, error_rate: float = 0.0, latency_ms: float = 0.0,
                          stream_interval_ms: float = 0.0) -> tuple[grpc.aio.Server, int]:
    """Start the app; returns the server (`await server.stop(grace)`) and its port."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((Echo(message, error_rate=error_rate, latency_ms=latency_ms,
                                          stream_interval_ms=stream_interval_ms).handler(),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise OSError(str(exc)) from None
    await server.start()
    return server, bound


async def _main(args: argparse.Namespace) -> None:
    host, port = split_hostport(args.listen)
    server, _ = await serve_grpc_echo(host, port, message=message_of(args), error_rate=args.error_rate,
                                      latency_ms=args.latency_ms, stream_interval_ms=args.stream_interval_ms)
    await until_stopped()
    await server.stop(1.0)


def main(argv: list[str] | None = None) -> int:
    p = sample_parser("python -m proxy.samples.grpc_echo", __doc__)
    p.add_argument("--error-rate", type=float, default=0.0, help="share of Say calls failed with INTERNAL")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    p.add_argument("--stream-interval-ms", type=float, default=0.0, help="delay between streamed messages")
    args = parse(p, argv)
    return run_sample("grpc-echo", args, lambda: _main(args), uvloop=False)


if __name__ == "__main__":
    sys.exit(main())
