"""One file per view (Textual modes) and per modal dialog."""
