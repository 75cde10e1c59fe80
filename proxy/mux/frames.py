"""yamux frames (HashiCorp's yamux spec, version 0): encoding and a streaming reader.

A frame is a 12-byte header, big-endian: version (u8, 0), type (u8), flags (u16),
stream id (u32), length (u32), followed, for a Data frame only, by `length` bytes of
payload. For a Window Update `length` is the window increment, for a Ping an opaque
value, for a Go Away an error code. Pure: no sockets, no event loop.
"""
from __future__ import annotations

import struct
from typing import Protocol

VERSION = 0
DATA, WINDOW_UPDATE, PING, GO_AWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 0x1, 0x2, 0x4, 0x8
GO_AWAY_NORMAL, GO_AWAY_PROTOCOL_ERROR, GO_AWAY_INTERNAL_ERROR = 0, 1, 2
INITIAL_WINDOW = 256 * 1024
HEADER_SIZE = 12
MAX_STREAM_ID = 0xFFFFFFFF

_HEADER = struct.Struct(">BBHII")
header = _HEADER.pack  # header(VERSION, type, flags, stream_id, length) -> 12 bytes
_unpack = _HEADER.unpack_from
_TYPE_NAMES = ("data", "window update", "ping", "go away")


class MuxProtocolError(Exception):
    """The peer broke the framing: the session cannot go on (the message says how)."""


def data_frame(stream_id: int, flags: int, payload: bytes) -> bytes:
    return header(VERSION, DATA, flags, stream_id, len(payload)) + payload


def window_update(stream_id: int, flags: int, delta: int) -> bytes:
    return header(VERSION, WINDOW_UPDATE, flags, stream_id, delta)


def ping(flags: int, value: int) -> bytes:
    return header(VERSION, PING, flags, 0, value)


def go_away(code: int) -> bytes:
    return header(VERSION, GO_AWAY, 0, 0, code)


class FrameSink(Protocol):
    """What a FrameReader reports frames to."""

    def on_data(self, stream_id: int, flags: int, chunk: memoryview) -> None:
        """Payload bytes of a Data frame (`chunk` is only valid during the call). A frame whose
        payload spans reads comes as several calls: SYN (and RST, ACK) only with the first,
        FIN only with the last. A frame without payload comes as one empty chunk."""

    def on_window_update(self, stream_id: int, flags: int, delta: int) -> None: ...

    def on_ping(self, flags: int, value: int) -> None: ...

    def on_go_away(self, code: int) -> None: ...


class FrameReader:
    """Cuts a byte stream into frames for a FrameSink, payloads streamed as they arrive: it
    holds at most a partial header (under 12 bytes), never a payload."""

    __slots__ = ("_sink", "_partial", "_stream_id", "_flags", "_remaining")

    def __init__(self, sink: FrameSink) -> None:
        self._sink = sink
        self._partial = b""  # the start of a header that a read cut
        self._stream_id = 0  # of the Data frame whose payload is being read
        self._flags = 0
        self._remaining = 0  # payload bytes of that frame still to come

    def feed(self, data: bytes | memoryview) -> None:
        """Raises MuxProtocolError for a frame of another version or of an unknown type."""
        view = memoryview(data)
        end = len(view)
        pos = 0
        sink = self._sink
        if self._remaining:
            pos = self._payload(view, 0, end)
        elif self._partial:
            need = HEADER_SIZE - len(self._partial)
            if end < need:
                self._partial += bytes(view)
                return
            head = self._partial + bytes(view[:need])
            self._partial = b""
            pos = self._frame(head, 0, view, need, end)
        while pos < end:
            if self._remaining:
                pos = self._payload(view, pos, end)
                continue
            if end - pos < HEADER_SIZE:
                self._partial = bytes(view[pos:end])
                return
            version, kind, flags, stream_id, length = _unpack(view, pos)
            pos += HEADER_SIZE
            if kind == DATA and version == VERSION and end - pos >= length:
                # the common case: a whole Data frame in this read
                sink.on_data(stream_id, flags, view[pos:pos + length])
                pos += length
            else:
                pos = self._frame(view, pos - HEADER_SIZE, view, pos, end)

    def _frame(self, head: bytes | memoryview, at: int, view: memoryview, pos: int, end: int) -> int:
        """Handle the frame whose header is `head[at:at + 12]`; `view[pos:end]` follows it."""
        version, kind, flags, stream_id, length = _unpack(head, at)
        if version != VERSION:
            raise MuxProtocolError(f"frame of yamux version {version} (expected {VERSION})")
        sink = self._sink
        if kind == DATA:
            self._stream_id, self._flags, self._remaining = stream_id, flags, length
            if length == 0:
                self._remaining = 0
                sink.on_data(stream_id, flags, view[pos:pos])
                return pos
            return self._payload(view, pos, end)
        if kind == WINDOW_UPDATE:
            sink.on_window_update(stream_id, flags, length)
        elif kind == PING:
            sink.on_ping(flags, length)
        elif kind == GO_AWAY:
            sink.on_go_away(length)
        else:
            raise MuxProtocolError(f"frame of unknown type {kind} (known: {', '.join(_TYPE_NAMES)})")
        return pos

    def _payload(self, view: memoryview, pos: int, end: int) -> int:
        """Hand on what `view[pos:end]` holds of the current Data frame's payload."""
        take = min(self._remaining, end - pos)
        self._remaining -= take
        flags = self._flags
        if self._remaining:
            self._flags = flags & ~(SYN | ACK | RST)  # the first chunk carried them
            flags &= ~FIN  # the last one will
        self._sink.on_data(self._stream_id, flags, view[pos:pos + take])
        return pos + take
