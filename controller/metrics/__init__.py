"""Golden metrics aggregated from the proxies' Prometheus /metrics (DESIGN section 4)."""
from .golden import WINDOWS, golden_rows, histogram_quantile
from .scraper import MetricsScraper

__all__ = ["WINDOWS", "MetricsScraper", "golden_rows", "histogram_quantile"]
