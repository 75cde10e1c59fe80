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
import signal
import sys
from collections.abc import Awaitable

from proxy.http1.server import Handler, HttpServer, Request, Response
from proxy.http1.runtime import install_uvloop, split_hostport

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
        raise ValueError(f"echo: --error-rate must be within [0, 1], got {error_rate}")
    if latency_ms < 0:
        raise ValueError(f"echo: --latency-ms must be >= 0, got {latency_ms}")
    handler = echo_handler(message, error_rate=error_rate, latency_ms=latency_ms)
    return await HttpServer(handler).listen(host, port)


async def _main(args: argparse.Namespace) -> None:
    host, port = split_hostport(args.listen)
    message = args.message if args.message is not None else f"Hi, I am from {args.cluster or 'nowhere'}!"
    server = await serve_echo(host, port, message=message, error_rate=args.error_rate,
                              latency_ms=args.latency_ms)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await server.shutdown(grace_s=2.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m proxy.samples.echo", description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="HOST:PORT")
    p.add_argument("--message", default=None, help="answer text (default: Hi, I am from CLUSTER!)")
    p.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 500")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    p.add_argument("--cluster", default="", help="cluster the workload belongs to")
    args = p.parse_args(argv)
    try:
        split_hostport(args.listen)
    except ValueError as exc:
        p.error(str(exc))
    install_uvloop()
    try:
        asyncio.run(_main(args))
    except ValueError as exc:
        print(f"echo: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"echo: cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
