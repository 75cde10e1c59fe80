"""The h2-echo sample app: HTTP/2 with prior knowledge (h2c), for `http2` ports and the
HTTP/2 benchmark. GET (and any method without a body) answers a fixed message; a request
with a body gets it streamed back, with flow control.

    python -m proxy.samples.h2_echo --listen 127.0.0.1:8081 --message "Hi" [--cluster cluster-1]

Prints `ready` on stdout once listening.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from proxy.http1.runtime import install_uvloop, split_hostport
from proxy.http2.connection import Headers, StreamHandler
from proxy.http2.server import H2ServerConnection
from proxy.http2.settings import LongLived

_TEXT = (b"content-type", b"text/plain; charset=utf-8")


class _Echo:
    """One request stream: its body goes back as the response body."""

    __slots__ = ("conn", "sid", "started", "unacked", "waiting")

    def __init__(self, conn: H2ServerConnection, sid: int) -> None:
        self.conn = conn
        self.sid = sid
        self.started = False
        self.unacked = 0
        self.waiting = False

    def on_head(self, headers: Headers, end_stream: bool) -> None:
        pass

    def on_data(self, data: bytes, end_stream: bool) -> None:
        if not self.started:
            self.started = True
            self.conn.respond(self.sid, [(b":status", b"200"), (b"content-type", b"application/octet-stream")],
                              end_stream=False)
        self.conn.send_data(self.sid, data, end_stream)
        self.unacked += len(data)
        if not self.waiting:
            self._ack()

    def _ack(self) -> None:
        """Let the client send more once what it sent has gone back out."""
        if self.conn.writable(self.sid):
            self.waiting = False
            self.conn.ack(self.sid, self.unacked)
            self.unacked = 0
        else:
            self.waiting = True
            self.conn.when_writable(self.sid, self._ack)

    def on_trailers(self, headers: Headers) -> None:
        if not self.started:
            self.conn.respond(self.sid, [(b":status", b"200")])
        else:
            self.conn.send_data(self.sid, b"", True)

    def on_closed(self, error_code: int, reason: str) -> None:
        pass


def echo_accept(message: str):
    body = message.encode() + b"\n"
    head = [(b":status", b"200"), _TEXT, (b"content-length", b"%d" % len(body))]

    def accept(conn: H2ServerConnection, sid: int, headers: Headers, end_stream: bool) -> StreamHandler:
        stream = _Echo(conn, sid)
        if end_stream:
            conn.respond(sid, head, body)
        return stream

    return accept


async def serve_h2_echo(host: str, port: int, *, message: str,
                        settings: LongLived | None = None) -> tuple[asyncio.Server, set]:
    """Start the app; returns the server and the set of its open connections."""
    connections: set = set()
    accept = echo_accept(message)
    config = settings or LongLived(h2_keepalive_s=0)
    server = await asyncio.get_running_loop().create_server(
        lambda: H2ServerConnection(accept, config, connections), host, port, reuse_address=True, backlog=1024)
    return server, connections


async def _main(args: argparse.Namespace) -> None:
    host, port = split_hostport(args.listen)
    message = args.message if args.message is not None else f"Hi, I am from {args.cluster or 'nowhere'}!"
    server, connections = await serve_h2_echo(host, port, message=message)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    for conn in list(connections):
        conn.shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m proxy.samples.h2_echo", description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="HOST:PORT")
    p.add_argument("--message", default=None, help="answer text (default: Hi, I am from CLUSTER!)")
    p.add_argument("--cluster", default="", help="cluster the workload belongs to")
    args = p.parse_args(argv)
    try:
        split_hostport(args.listen)
    except ValueError as exc:
        p.error(str(exc))
    install_uvloop()
    try:
        asyncio.run(_main(args))
    except OSError as exc:
        print(f"h2-echo: cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
