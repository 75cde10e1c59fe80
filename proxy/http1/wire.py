"""HTTP/1.1 bytes on the wire: status lines, header filtering, simple responses."""
from __future__ import annotations

from http import HTTPStatus

Headers = list[tuple[bytes, bytes]]

# Headers that describe one hop (RFC 9110 7.6.1) plus the framing headers the
# proxy rewrites itself on each side.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"expect",
    }
)

STATUS_LINES: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus
}

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def status_line(status: int) -> bytes:
    line = STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d Unknown\r\n" % status
    return line


def connection_tokens(value: bytes) -> frozenset[bytes]:
    return frozenset(t.strip().lower() for t in value.split(b","))


def not_forwarded(connection: bytes, also: frozenset[bytes] = frozenset()) -> frozenset[bytes]:
    """The (lowercase) header names a proxy drops: hop-by-hop ones, those the Connection
    header value `connection` names, and `also`."""
    skip = HOP_BY_HOP | also if also else HOP_BY_HOP
    return skip | connection_tokens(connection) if connection else skip


def encode_end_to_end(headers: Headers, skip: frozenset[bytes] = HOP_BY_HOP) -> bytes:
    """The header lines a proxy passes on: all but those `skip` names (see `not_forwarded`)."""
    return b"".join([b"".join((name, b": ", value, b"\r\n")) for name, value in headers
                     if name.lower() not in skip])


def encode_headers(headers: Headers) -> bytes:
    return b"".join([name + b": " + value + b"\r\n" for name, value in headers])


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def text_response(status: int, text: str, *, close: bool = False, head_only: bool = False) -> bytes:
    """A complete response with a text/plain body (errors, refusals)."""
    body = text.encode() + b"\n"
    head = (
        status_line(status)
        + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body)
        + (b"connection: close\r\n" if close else b"")
        + b"\r\n"
    )
    return head if head_only else head + body
