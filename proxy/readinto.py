"""`ReadInto`: the reading side of the connections that parse what they read at once (the
HTTP/1.1 server's and the upstream client's over TLS, mux sessions): the transport reads
into one buffer they all share."""
from __future__ import annotations

import asyncio
import threading


class _ReadBuffer(threading.local):
    """One read buffer for all the connections of a thread's event loop: the transport
    fills it and the protocol parses it at once (httptools copies what it keeps), before
    any other read can happen on that thread, so no connection holds a buffer of its own."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(64 * 1024))


_READ = _ReadBuffer()


class ReadInto(asyncio.BufferedProtocol):
    """A connection protocol that parses what it reads at once: the transport reads
    into the thread's shared buffer and calls `data_received` with a view of the bytes
    read. Over TLS this spares the allocation (and release) of a 256 KiB bytes object
    per read that uvloop makes for a plain asyncio.Protocol. A transport that
    started reading for another protocol calls `data_received` with bytes (as a
    protocol sniffer hands over what it read)."""

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_READ.view[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        raise NotImplementedError
