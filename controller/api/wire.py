"""What the API and its client agree on besides JSON bodies: paths, headers, stream framing."""
from __future__ import annotations

PREFIX = "/api/v1"
USER_HEADER = "X-Meshtui-User"  # who the audit log records for a write (set by the SSH server)
NDJSON = "application/x-ndjson"

# Streams (watch, tap) are NDJSON, one object per line. Both send a heartbeat line every
# HEARTBEAT_SECONDS so proxies keep the connection and clients notice a dead one.
HEARTBEAT_SECONDS = 10.0
# watch: a BOOKMARK event with this name carries the last resourceVersion sent; not a change.
HEARTBEAT_BOOKMARK = "heartbeat"
# tap: a line {"kind": "heartbeat"}.
TAP_HEARTBEAT_KIND = "heartbeat"
# An error after a stream started: watch {"type": "ERROR", "object": <Status>} (as Kubernetes does),
# tap {"kind": "error", "status": <Status>}.
WATCH_ERROR = "ERROR"
TAP_ERROR_KIND = "error"
