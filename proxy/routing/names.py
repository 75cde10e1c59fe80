"""Service names the outbound proxy resolves: `svc.ns`, `svc.ns.svc.cluster.local`,
`svc.ns.svc.clusterset.local`, each with an optional `:port` and trailing dot."""
from __future__ import annotations

import re

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_AUTHORITY = re.compile(
    rf"({_LABEL})\.({_LABEL})(?:\.svc\.(?:cluster|clusterset)\.local)?\.?(?::([0-9]{{1,5}}))?",
    re.IGNORECASE,
)


def parse_authority(authority: str) -> tuple[str, str, int | None] | None:
    """(namespace, name, port or None) of a service authority; None for anything else."""
    m = _AUTHORITY.fullmatch(authority)
    if m is None:
        return None
    name, namespace, port = m.groups()
    if port is None:
        return namespace.lower(), name.lower(), None
    p = int(port)
    if not 0 < p < 65536:
        return None
    return namespace.lower(), name.lower(), p
