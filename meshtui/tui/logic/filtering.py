"""k9s' `/` filter: a case-insensitive regex searched in every cell of a row (so `^` and `$` anchor
to a cell); a leading `!` keeps the rows where no cell matches."""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RowFilter:
    text: str = ""
    pattern: re.Pattern[str] | None = None
    invert: bool = False
    error: str = ""  # set when the text was not a valid regex and is matched literally

    @classmethod
    def compile(cls, text: str) -> "RowFilter":
        invert = text.startswith("!")
        body = text[1:] if invert else text
        if not body:
            return cls(text)
        try:
            return cls(text, re.compile(body, re.IGNORECASE), invert)
        except re.error as e:
            return cls(text, re.compile(re.escape(body), re.IGNORECASE), invert, f"not a regex ({e}); matching literally")

    @property
    def active(self) -> bool:
        return self.pattern is not None

    def matches(self, cells: tuple[str, ...]) -> bool:
        if self.pattern is None:
            return True
        return any(self.pattern.search(c) for c in cells) != self.invert
