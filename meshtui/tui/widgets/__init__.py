"""Widgets grouped by area: tables (live diff-updated DataTable), chrome (header, command bar),
policy (the GlobalTrafficPolicy editor), traffic (tap filters and request detail)."""
