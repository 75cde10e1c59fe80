"""The echo sample app: answers GET/HEAD (and any other method) with a fixed
message, and POST/PUT with the request body streamed back.

    python -m proxy.samples.echo --listen 127.0.0.1:8080 --message "Hi" \
        [--error-rate 0.1] [--latency-ms 5] [--cluster cluster-1]

Prints `ready` on stdout once listening.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Awaitable

from proxy.http1.server import Handler, HttpServer, Request, Response
from proxy.http1.runtime import split_hostport
from proxy.samples.app import message_of, parse, run_sample, sample_parser, until_stopped

TEXT_PLAIN = [(b"content-type", b"text/plain; charset=utf-8")]


def echo_handler(message: str, *, error_rate: float = 0.0, latency_ms: float = 0.0) -> Handler:
    body = message.encode() + b"\n"
    delay = latency_ms / 1000.0

    def answer(req: Request, resp: Response) -> Awaitable[None] | None:
        # a plain function: a GET is answered at once, without a task (see proxy.http1.server)
        if error_rate and random.random() < error_rate:
            resp.send(500, TEXT_PLAIN, b"injected error\n")
            return None
        if req.method in (b"POST", b"PUT"):
            return stream_back(req, resp)
        resp.send(200, TEXT_PLAIN, body)
        return None

    if not delay:
        return answer

    async def delayed(req: Request, resp: Response) -> None:
        await asyncio.sleep(delay)
        streaming = answer(req, resp)
        if streaming is not None:
            await streaming

    return delayed


async def stream_back(req: Request, resp: Response) -> None:
    """The request body, streamed back as it comes."""
    resp.start(200, [(b"content-type", req.header(b"content-type") or b"application/octet-stream")],
               req.content_length)
    while chunk := await req.body.read():
        resp.write(chunk)
        if resp.paused:
            await resp.drain()
    resp.end()


async def serve_echo(host: str, port: int, *, message: str, error_rate: float = 0.0,
                     latency_ms: float = 0.0) -> HttpServer:
    """Start the echo app; the result behaves as an asyncio.Server (`sockets`,
    `close()`, `wait_closed()`)."""
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"--error-rate must be within [0, 1], got {error_rate}")
    if latency_ms < 0:
        raise ValueError(f"--latency-ms must be >= 0, got {latency_ms}")
    handler = echo_handler(message, error_rate=error_rate, latency_ms=latency_ms)
    return await HttpServer(handler).listen(host, port)


async def _main(args: argparse.Namespace) -> None:
    host, port = split_hostport(args.listen)
    server = await serve_echo(host, port, message=message_of(args), error_rate=args.error_rate,
                              latency_ms=args.latency_ms)
    await until_stopped()
    await server.shutdown(grace_s=2.0)


def main(argv: list[str] | None = None) -> int:
    p = sample_parser("python -m proxy.samples.echo", __doc__)
    p.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 500")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    args = parse(p, argv)
    return run_sample("echo", args, lambda: _main(args))


if __name__ == "__main__":
    sys.exit(main())
