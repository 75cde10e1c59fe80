"""Pure view logic: rows, shares, filters and commands computed from plain data, without Textual."""
