"""When a certificate is renewed.

Rule: renew once less than a third of the lifetime remains (two thirds elapsed) — the same
idea as Linkerd's proxies, which renew at 70% of the lifetime. A 24 h leaf is renewed after
16 h, leaving 8 h for a failed renewal to be retried before traffic is at risk."""
from __future__ import annotations

from datetime import datetime

from proxy.tls.files import LeafFiles

RENEW_WHEN_REMAINING = 1 / 3


def renew_at(not_before: datetime, not_after: datetime) -> datetime:
    return not_after - (not_after - not_before) * RENEW_WHEN_REMAINING


def needs_renewal(leaf: LeafFiles, now: datetime) -> bool:
    return now >= renew_at(leaf.not_before, leaf.not_after)
