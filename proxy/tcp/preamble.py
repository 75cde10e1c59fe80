"""The line an outbound proxy sends first on an opaque TCP connection to another cluster's
gateway, naming the export it is for (pure).

    MESHTUI-TCP <export path> <source cluster>\r\n

The export path is the one of the ServiceImport endpoint (`/cluster-1/echo-tcp`), so the
gateway finds the export as it does for HTTP (longest path rule). With mTLS the connection
negotiates ALPN `meshtui-tcp` and the caller is its certificate; the source cluster in the
line is only believed in plain mode, as the HTTP plain-mode headers are. Chosen over SNI
(which carries the gateway's own name, checked by the client) and over an ALPN value per
export (a server context offers a fixed list): one short line, sent with the first write.
After it, both ways are framed (proxy/tcp/pipe.py), which carries a half-close over TLS.
"""
from __future__ import annotations

MAGIC = b"MESHTUI-TCP "
MAX_LINE = 1024


class PreambleError(ValueError):
    """Not a valid preamble; the message says why."""


def encode(path: str, src_cluster: str) -> bytes:
    if not path.startswith("/") or " " in path or " " in src_cluster:
        raise PreambleError(f"cannot name export path {path!r} from cluster {src_cluster!r} in a preamble")
    return MAGIC + path.encode() + b" " + (src_cluster or "-").encode() + b"\r\n"


def parse(buffer: bytes) -> tuple[str, str, int] | None:
    """(export path, source cluster, bytes used) once the line is complete; None while it
    is not. Raises PreambleError."""
    end = buffer.find(b"\r\n")
    if end < 0:
        if len(buffer) > MAX_LINE:
            raise PreambleError(f"preamble longer than {MAX_LINE} bytes")
        if not MAGIC.startswith(buffer[:len(MAGIC)]):
            raise PreambleError("connection does not start with the MESHTUI-TCP preamble")
        return None
    line = buffer[:end]
    if not line.startswith(MAGIC):
        raise PreambleError("connection does not start with the MESHTUI-TCP preamble")
    parts = line[len(MAGIC):].split(b" ")
    if len(parts) != 2 or not parts[0].startswith(b"/"):
        raise PreambleError(f"malformed preamble {line[:100]!r}: expected MESHTUI-TCP <path> <cluster>")
    src = parts[1].decode("latin-1")
    return parts[0].decode("latin-1"), "" if src == "-" else src, end + 2
