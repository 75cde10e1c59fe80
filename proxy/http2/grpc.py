"""What the proxy reads of gRPC (pure): deadlines, status codes, and the trailers-only
error responses it answers itself.

gRPC over HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md): `grpc-timeout` is 1 to 8 digits and a
unit (H M S m u n); the call's outcome is `grpc-status` in the trailers, or in the
headers of a trailers-only response (HEADERS with END_STREAM).
"""
from __future__ import annotations

from urllib.parse import quote

from proxy.metrics import GRPC_FAILURE_CODES

_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}

UNAVAILABLE = 14
DEADLINE_EXCEEDED = 4
INTERNAL = 13
# grpc-message is percent-encoded except for printable ASCII other than '%'
_MESSAGE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if c != 0x25)
_HTTP_TO_GRPC = {400: INTERNAL, 401: 16, 403: 7, 404: 12, 429: UNAVAILABLE, 502: UNAVAILABLE, 503: UNAVAILABLE,
                 504: UNAVAILABLE}


def is_grpc(content_type: bytes | None) -> bool:
    return content_type is not None and content_type[:16].lower() == b"application/grpc"


def parse_timeout(value: bytes) -> float:
    """`grpc-timeout` -> seconds; ValueError naming the value when it is malformed."""
    unit = _UNITS.get(value[-1:])
    digits = value[:-1]
    if unit is None or not 0 < len(digits) <= 8 or not digits.isdigit():
        raise ValueError(f"grpc-timeout {value.decode('latin-1')!r}: expected 1 to 8 digits and a unit of H M S m u n")
    return int(digits) * unit


def status_of(headers: tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]]) -> int | None:
    """The `grpc-status` among `headers`, None when absent or not a number."""
    for name, value in headers:
        if name == b"grpc-status":
            return int(value) if value.isdigit() else None
    return None


def failed(code: int | None) -> bool:
    """Whether a gRPC status is a failure as Linkerd counts it."""
    return code is not None and code in GRPC_FAILURE_CODES


def error_response(code: int, message: str) -> list[tuple[bytes, bytes]]:
    """A trailers-only response (HEADERS with END_STREAM) carrying a gRPC error: what a
    gRPC client shows as the call's status and message."""
    return [(b":status", b"200"), (b"content-type", b"application/grpc"), (b"grpc-status", b"%d" % code),
            (b"grpc-message", quote(message, safe=_MESSAGE_SAFE).encode())]


def code_for_http(status: int) -> int:
    """The gRPC status a proxy-made HTTP error maps to (the gRPC spec's table; else Unknown)."""
    return _HTTP_TO_GRPC.get(status, 2)
