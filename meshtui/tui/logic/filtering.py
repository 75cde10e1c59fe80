"""k9s' `/` filter: a case-insensitive regex searched in every cell of a row (so `^` and `$` anchor
to a cell); a leading `!` keeps the rows where no cell matches."""
from __future__ import annotations

import re
from dataclasses import dataclass

# Constructs that look past a cell's edges in ways the row's cells joined by newlines would not
# reproduce; a pattern holding one is searched cell by cell only.
EDGE_SENSITIVE = ("\\A", "\\Z", "\\B", "(?!", "(?<!")


@dataclass(frozen=True)
class RowFilter:
    text: str = ""
    pattern: re.Pattern[str] | None = None
    invert: bool = False
    error: str = ""  # set when the text was not a valid regex and is matched literally
    # The pattern over the cells joined by newlines with ^ and $ at every line: it finds a match
    # wherever some cell has one (and in a few more rows), so one search rules most rows out.
    joined: re.Pattern[str] | None = None

    @classmethod
    def compile(cls, text: str) -> "RowFilter":
        invert = text.startswith("!")
        body = text[1:] if invert else text
        if not body:
            return cls(text)
        error = ""
        try:
            pattern = re.compile(body, re.IGNORECASE)
        except re.error as e:
            body, error = re.escape(body), f"not a regex ({e}); matching literally"
            pattern = re.compile(body, re.IGNORECASE)
        joined = None if any(s in body for s in EDGE_SENSITIVE) else re.compile(body, re.IGNORECASE | re.MULTILINE)
        return cls(text, pattern, invert, error, joined)

    @property
    def active(self) -> bool:
        return self.pattern is not None

    def matches(self, cells: tuple[str, ...]) -> bool:
        if self.pattern is None:
            return True
        if self.joined is not None and self.joined.search("\n".join(cells)) is None:
            return self.invert
        return any(self.pattern.search(c) for c in cells) != self.invert
