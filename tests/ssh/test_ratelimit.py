"""The per-address token bucket, as pure logic on a given clock."""
from __future__ import annotations

import pytest

from meshtui.ssh.ratelimit import AddressBuckets, RateLimit


def test_a_burst_then_one_attempt_per_refill_interval():
    buckets = AddressBuckets(RateLimit(3, 30.0))  # 3 at once, one more every 10 s
    assert [buckets.allow("10.0.0.1", 0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.allow("10.0.0.2", 0.0)  # another address has its own bucket
    assert buckets.retry_after("10.0.0.1", 0.0) == pytest.approx(10.0)
    assert not buckets.allow("10.0.0.1", 9.0)
    assert buckets.allow("10.0.0.1", 10.5)  # refused attempts cost nothing: the refill was not delayed
    assert not buckets.allow("10.0.0.1", 10.6)
    assert [buckets.allow("10.0.0.1", 1000.0) for _ in range(4)] == [True, True, True, False]  # refills up to the burst only


def test_full_buckets_are_forgotten_when_the_table_grows():
    buckets = AddressBuckets(RateLimit(2, 1.0), max_tracked=100)
    for i in range(100):
        buckets.allow(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(buckets) == 100
    buckets.allow("10.1.0.0", 0.5)  # the 101st; the 100 others have refilled by now and are dropped
    assert len(buckets) == 1
    assert [buckets.allow("10.1.0.0", 0.5) for _ in range(2)] == [True, False]  # the kept bucket still counts

@pytest.mark.parametrize("text", ["", "10", "0/60", "10/0", "x/60", "10/-1", "10/abc"])
def test_bad_limits_are_refused_with_the_expected_form(text):
    with pytest.raises(ValueError, match="expected ATTEMPTS/SECONDS"):
        RateLimit.parse(text)


def test_a_limit_is_parsed():
    assert RateLimit.parse("10/60") == RateLimit(10, 60.0) and RateLimit(10, 60.0).rate == pytest.approx(1 / 6)
