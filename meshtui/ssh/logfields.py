"""`key=value` log fields (logfmt), quoted where a value has spaces, quotes or `=`."""
from __future__ import annotations

from typing import Any


def logfmt(**fields: Any) -> str:
    out = []
    for key, value in fields.items():
        text = "" if value is None else str(value)
        if not text or any(c in text for c in ' "=\\') or not text.isprintable():
            text = '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
        out.append(f"{key}={text}")
    return " ".join(out)
