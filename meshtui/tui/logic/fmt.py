"""How numbers, ages and trends look in a terminal cell."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

SPARK = "▁▂▃▄▅▆▇█"


def pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.2f}%"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def rps(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def age(seconds: float) -> str:
    """k9s style: the largest unit only."""
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def iso_epoch(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except (TypeError, ValueError):
        return None


def sparkline(values: Iterable[float], width: int) -> str:
    """A one-line trend of the last `width` values, scaled to their own maximum.
    Hand-written because a DataTable cell holds text, not a Sparkline widget."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    top = max(tail)
    if top <= 0:
        return SPARK[0] * len(tail)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in tail)


def bar(fraction: float, width: int) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)
