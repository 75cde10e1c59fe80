"""Small helpers shared by the benchmark scripts."""
from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def peak_rss_mb() -> float:
    """This process's own peak (VmHWM); ru_maxrss would include a forking parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def summary(values_ms: list[float]) -> str:
    return (f"n={len(values_ms)} p50={percentile(values_ms, 0.5):.2f}ms p99={percentile(values_ms, 0.99):.2f}ms "
            f"max={max(values_ms):.2f}ms mean={statistics.fmean(values_ms):.2f}ms")


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"
