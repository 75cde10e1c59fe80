"""Widgets grouped by area: tables (the diff-updated live DataTable), chrome (header and command
line), policy (the GlobalTrafficPolicy editor)."""
