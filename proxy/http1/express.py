"""The express lane's byte patterns: the commonest request and the commonest answer,
recognised whole so that they pass through as the bytes they are.

A simple GET is a whole request head in one read and nothing after it: origin-form
target, HTTP/1.1, exactly one Host, and none of the headers a proxy must act on
(framing, hop-by-hop, Expect, Upgrade) but `Connection: keep-alive`, which says
HTTP/1.1's default and is dropped (`forwardable`). A whole response is an HTTP/1.1 answer with
a body (2xx-5xx but 204 and 304), one Content-Length, no hop-by-hop headers, and
exactly its head and body in one read. What does not match takes the general path
(server.py, client.py and forward.py, with httptools), which also answers malformed
bytes: these patterns only ever accept a subset of what httptools accepts.
"""
from __future__ import annotations

import re
from typing import Final

# Header lines end at CRLF and their parts cannot run into each other, so every repetition
# is possessive (never given back: sre keeps no backtracking state for it), and the names a
# line must not have are written as a prefix tree (one branch tried per first letter):
# the same language as the plain alternation, about a third cheaper to match.
_TOKEN: Final = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]++"
_VALUE: Final = rb"[\t\x20-\x7e\x80-\xff]*+"


def _header_line_except(names: bytes) -> bytes:
    """A header line whose name is none of `names` (a regex alternation)."""
    return rb"(?!(?i:" + names + rb"):)" + _TOKEN + rb":[ \t]*+" + _VALUE + rb"\r\n"


def _header_lines_except(names: bytes) -> bytes:
    return rb"(?:" + _header_line_except(names) + rb")*+"


# the hop-by-hop names (connection, keep-alive, proxy-*, te, trailer, transfer-encoding,
# upgrade) and content-length: what neither a simple GET nor a whole response may carry
# but as the patterns below allow
_HOP_BY_HOP_OR_LENGTH: Final = (
    rb"c(?:onnection|ontent-length)|keep-alive|proxy-[a-z0-9-]*|t(?:e|railer|ransfer-encoding)|upgrade")
# ... and host and expect, for a request's other lines
_NOT_OTHER_REQUEST_LINE: Final = _HOP_BY_HOP_OR_LENGTH + rb"|expect|host"
_KEEP_ALIVE: Final = rb"(?i:connection):[ \t]*+(?i:keep-alive)[ \t]*+\r\n"  # HTTP/1.1's default, said (python-requests)


def _request_lines(after: bytes) -> bytes:
    """A simple GET's other header lines (before or `after` the Host line);
    `Connection: keep-alive` ones in the named group keep_alive...`after`."""
    other = _header_line_except(_NOT_OTHER_REQUEST_LINE)
    # (not possessive: CPython 3.11's sre mis-spans a group inside a possessive repetition)
    return rb"(?:(?P<keep_alive" + after + rb">" + _KEEP_ALIVE + rb")|" + other + rb")*"


SIMPLE_GET: Final = re.compile(
    rb"GET (?P<target>/[!-~]*+) HTTP/1\.1\r\n" + _request_lines(b"")
    + rb"(?i:host):[ \t]*+(?P<host>[!-~]++)[ \t]*+\r\n" + _request_lines(b"_after") + rb"\r\n\Z")
_KEEP_ALIVE_LINE: Final = re.compile(rb"\r\n(?i:connection):[ \t]*(?i:keep-alive)[ \t]*(?=\r\n)")

_OTHER_RESPONSE_HEADERS: Final = _header_lines_except(_HOP_BY_HOP_OR_LENGTH)
# group 1: the status (not 204 nor 304: they have no body); group 2: the Content-Length
_RESPONSE_HEAD: Final = re.compile(
    rb"HTTP/1\.1 (?![23]04)([2-5][0-9][0-9]) " + _VALUE + rb"\r\n" + _OTHER_RESPONSE_HEADERS
    + rb"(?i:content-length):[ \t]*+([0-9]{1,15}+)[ \t]*+\r\n" + _OTHER_RESPONSE_HEADERS + rb"\r\n")

# the headers one mesh hop adds for the next (proxy/http1/relay.py): a request that
# carries any goes the general path, which knows which to believe and drops them
MESH_HEADER: Final = re.compile(rb"\n(?i:x-meshtui-)")
_NO_KEEP_ALIVE: Final = (None, None)


def simple_get(data: bytes | memoryview, max_bytes: int, max_headers: int) -> re.Match[bytes] | None:
    """The match of SIMPLE_GET when `data` is a simple GET within the head limits, else None."""
    if len(data) > max_bytes:
        return None
    m = SIMPLE_GET.match(data)
    # a header line takes 4 bytes at least: only a long head may have too many
    if m is None or len(data) > 4 * max_headers and bytes(data).count(b"\n") > max_headers + 2:
        return None
    return m


def forwardable(data: bytes | memoryview, m: re.Match[bytes]) -> bytes:
    """The simple GET `data` (`m` its match) as a proxy passes it on: without its
    `Connection: keep-alive` lines, which are hop-by-hop."""
    head = bytes(data)
    if m.group("keep_alive", "keep_alive_after") == _NO_KEEP_ALIVE:
        return head
    return _KEEP_ALIVE_LINE.sub(b"", head)


_NOT_WHOLE: Final = (0, 0)


def whole_response(data: bytes | memoryview) -> tuple[int, int]:
    """The status and the body's length of the whole response `data` is, or (0, 0) when
    it is not one."""
    m = _RESPONSE_HEAD.match(data)
    if m is None:
        return _NOT_WHOLE
    status, length = m.groups()
    body_bytes = int(length)
    return (int(status), body_bytes) if m.end() + body_bytes == len(data) else _NOT_WHOLE


def closing(response: bytes) -> bytes:
    """`response` (a whole response) saying that the connection closes after it."""
    end = response.index(b"\r\n\r\n") + 2
    return response[:end] + b"connection: close\r\n" + response[end:]
