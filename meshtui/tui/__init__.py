"""The Textual front end: one merged, live view of every cluster of a federation."""
from .app import MeshApp, run_tui

__all__ = ["MeshApp", "run_tui"]
