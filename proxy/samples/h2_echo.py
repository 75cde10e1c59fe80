"""The h2-echo sample app: HTTP/2 with prior knowledge (h2c), for `http2` ports and the
HTTP/2 benchmark. GET (and any method without a body) answers a fixed message; a request
with a body gets it streamed back, with flow control.

    python -m proxy.samples.h2_echo --listen 127.0.0.1:8081 --message "Hi" [--cluster cluster-1]

Prints `ready` on stdout once listening.
"""
from __future__ import annotations

import argparse
import asyncio
import sys

from proxy.http1.runtime import split_hostport
from proxy.samples.app import message_of, parse, run_sample, sample_parser, until_stopped
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
    server, connections = await serve_h2_echo(host, port, message=message_of(args))
    await until_stopped()
    server.close()
    for conn in list(connections):
        conn.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = parse(sample_parser("python -m proxy.samples.h2_echo", __doc__), argv)
    return run_sample("h2-echo", args, lambda: _main(args))


if __name__ == "__main__":
    sys.exit(main())
