"""Per-address limit on connection attempts: one token bucket per client address.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; every attempt takes
one, and an attempt that finds the bucket empty is refused. Pure logic: the clock is passed in."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    burst: int  # attempts allowed at once
    period: float  # seconds in which a full bucket refills

    @classmethod
    def parse(cls, text: str) -> "RateLimit":
        """`N/SECONDS`, e.g. `10/60`: up to 10 attempts at once, refilled over 60 seconds."""
        count, sep, seconds = text.partition("/")
        try:
            limit = cls(int(count), float(seconds)) if sep else None
        except ValueError:
            limit = None
        if limit is None or limit.burst < 1 or limit.period <= 0:
            raise ValueError(f"expected ATTEMPTS/SECONDS with ATTEMPTS >= 1 and SECONDS > 0 (e.g. 10/60), got {text!r}")
        return limit

    @property
    def rate(self) -> float:
        return self.burst / self.period


class AddressBuckets:
    """Token buckets by address. Buckets that have refilled completely carry no information and are
    dropped when the table grows past `max_tracked`, so a scan from many addresses stays bounded."""

    def __init__(self, limit: RateLimit, max_tracked: int = 4096) -> None:
        self.limit = limit
        self.max_tracked = max_tracked
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)

    def _tokens(self, address: str, now: float) -> float:
        tokens, when = self._buckets.get(address, (float(self.limit.burst), now))
        return min(float(self.limit.burst), tokens + (now - when) * self.limit.rate)

    def allow(self, address: str, now: float) -> bool:
        """Take a token for one attempt from `address`; False when its bucket is empty."""
        tokens = self._tokens(address, now)
        allowed = tokens >= 1.0
        self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_tracked:
            self._forget_full(now)
        return allowed

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until `address` may try again."""
        return max(0.0, (1.0 - self._tokens(address, now)) / self.limit.rate)

    def _forget_full(self, now: float) -> None:
        for address in [a for a in self._buckets if self._tokens(a, now) >= self.limit.burst]:
            del self._buckets[address]

    def __len__(self) -> int:
        return len(self._buckets)
