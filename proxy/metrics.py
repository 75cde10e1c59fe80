"""Prometheus metrics of one proxy, with Linkerd's names, labels and buckets.

A small registry of its own rather than prometheus_client: recording is a few
attribute updates with no lock and no label lookup (callers keep the `Series`
of a route). Measured per request (request + response + latency, CPU time):
0.6 µs here (0.85 µs with the `series()` lookup) against 2.3 µs for
prometheus_client with cached children and 8.1 µs with `labels()` per request
(which response_total's status_code label needs).
Single-threaded: call it from the event loop only.
Rendered as Prometheus text exposition format 0.0.4.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Final

LATENCY_BUCKETS_MS: Final[tuple[int, ...]] = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
)
# gRPC Unknown, DeadlineExceeded, Internal, Unavailable, DataLoss
GRPC_FAILURE_CODES: Final = frozenset({2, 4, 13, 14, 15})
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_LE: Final = tuple(f'le="{b}"' for b in LATENCY_BUCKETS_MS) + ('le="+Inf"',)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def _num(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0

    def observe(self, value_ms: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS_MS, value_ms)] += 1
        self.sum += value_ms

    def render(self, name: str, labels: str, out: list[str]) -> None:
        total = 0
        for le, n in zip(_LE, self.counts):
            total += n
            out.append(f"{name}_bucket{{{labels},{le}}} {total}")
        out.append(f"{name}_sum{{{labels}}} {_num(self.sum)}")
        out.append(f"{name}_count{{{labels}}} {total}")


class Series:
    """The HTTP metrics of one (direction, source, destination, tls)."""

    def __init__(self, labels: str) -> None:
        self.labels = labels
        self.requests = 0
        self.successes: dict[int, int] = {}  # status code -> responses
        self.failures: dict[int, int] = {}
        self.latency = _Histogram()

    def request(self) -> None:
        self.requests += 1

    def response(self, status_code: int, latency_ms: float, *, grpc_status: int | None = None,
                 error: str = "") -> None:
        """status_code 0 = no response (error says why)."""
        failed = status_code >= 500 or error or (grpc_status is not None and grpc_status in GRPC_FAILURE_CODES)
        counts = self.failures if failed else self.successes
        counts[status_code] = counts.get(status_code, 0) + 1
        self.latency.observe(latency_ms)

    def exchange(self, status_code: int, latency_ms: float, error: str = "") -> None:
        """A request and its response (no gRPC status), counted at once: `request()` and
        `response()` in one call, for the HTTP/1.1 relays' hot path."""
        self.requests += 1
        counts = self.failures if status_code >= 500 or error else self.successes
        counts[status_code] = counts.get(status_code, 0) + 1
        latency = self.latency
        latency.counts[bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1  # latency.observe(), inlined: the hot path
        latency.sum += latency_ms


class TcpSeries:
    def __init__(self, labels: str) -> None:
        self.labels = labels
        self.opened = 0
        self.closed = 0
        self.read_bytes = 0
        self.write_bytes = 0

    def open(self) -> None:
        self.opened += 1

    def close(self, bytes_in: int, bytes_out: int) -> None:
        """bytes_in: read by the proxy from the connection's peer; bytes_out: written to it."""
        self.closed += 1
        self.read_bytes += bytes_in
        self.write_bytes += bytes_out


class _Gateway:
    def __init__(self, labels: str) -> None:
        self.labels = labels
        self.alive = 0
        self.latency = _Histogram()


_HEADERS: Final = {
    "request_total": ("counter", "Total count of HTTP requests."),
    "response_total": ("counter", "Total count of HTTP responses."),
    "response_latency_ms": ("histogram", "Time from a request's headers being received to its response stream completing."),
    "tcp_open_total": ("counter", "Total count of opened connections."),
    "tcp_close_total": ("counter", "Total count of closed connections."),
    "tcp_open_connections": ("gauge", "Number of currently-open connections."),
    "tcp_read_bytes_total": ("counter", "Total count of bytes read from peers."),
    "tcp_write_bytes_total": ("counter", "Total count of bytes written to peers."),
    "gateway_alive": ("gauge", "Whether the gateway of a target cluster answers its probes (1) or not (0)."),
    "gateway_probe_latency_ms": ("histogram", "Latency of gateway probes."),
}


class Metrics:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._series: dict[tuple[str, str, str, str, str, bool], Series] = {}
        self._tcp: dict[tuple[str, str, str, str, str, bool], TcpSeries] = {}
        self._gateways: dict[str, _Gateway] = {}

    def series(self, *, direction: str, src_cluster: str, dst_cluster: str, dst_namespace: str,
               dst_service: str, tls: bool) -> Series:
        key = (direction, src_cluster, dst_cluster, dst_namespace, dst_service, tls)
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = Series(self._label_text(*key))
        return s

    def tcp(self, *, direction: str, src_cluster: str, dst_cluster: str, dst_namespace: str,
            dst_service: str, tls: bool) -> TcpSeries:
        key = (direction, src_cluster, dst_cluster, dst_namespace, dst_service, tls)
        s = self._tcp.get(key)
        if s is None:
            s = self._tcp[key] = TcpSeries(self._label_text(*key))
        return s

    def set_gateway(self, gateway_cluster: str, alive: bool, probe_latency_ms: float | None) -> None:
        g = self._gateways.get(gateway_cluster)
        if g is None:
            g = self._gateways[gateway_cluster] = _Gateway(
                _labels(cluster=self.cluster, target_cluster_name=gateway_cluster)
            )
        g.alive = 1 if alive else 0
        if probe_latency_ms is not None:
            g.latency.observe(probe_latency_ms)

    def render(self) -> str:
        out: list[str] = []
        series = sorted(self._series.values(), key=lambda s: s.labels)
        tcp = sorted(self._tcp.values(), key=lambda s: s.labels)
        gateways = [self._gateways[k] for k in sorted(self._gateways)]

        self._header("request_total", out)
        out.extend(f"request_total{{{s.labels}}} {s.requests}" for s in series)
        self._header("response_total", out)
        for s in series:
            for classification, counts in (("success", s.successes), ("failure", s.failures)):
                for code in sorted(counts):
                    status = f',status_code="{code}"' if code else ""
                    out.append(
                        f'response_total{{{s.labels},classification="{classification}"{status}}} {counts[code]}'
                    )
        self._header("response_latency_ms", out)
        for s in series:
            s.latency.render("response_latency_ms", s.labels, out)

        for name, value in (
            ("tcp_open_total", lambda t: t.opened),
            ("tcp_close_total", lambda t: t.closed),
            ("tcp_open_connections", lambda t: t.opened - t.closed),
            ("tcp_read_bytes_total", lambda t: t.read_bytes),
            ("tcp_write_bytes_total", lambda t: t.write_bytes),
        ):
            self._header(name, out)
            out.extend(f"{name}{{{t.labels}}} {value(t)}" for t in tcp)

        self._header("gateway_alive", out)
        out.extend(f"gateway_alive{{{g.labels}}} {g.alive}" for g in gateways)
        self._header("gateway_probe_latency_ms", out)
        for g in gateways:
            g.latency.render("gateway_probe_latency_ms", g.labels, out)
        out.append("")
        return "\n".join(out)

    def _label_text(self, direction: str, src_cluster: str, dst_cluster: str, dst_namespace: str,
                    dst_service: str, tls: bool) -> str:
        return _labels(
            cluster=self.cluster,
            direction=direction,
            src_cluster=src_cluster,
            dst_cluster=dst_cluster,
            dst_namespace=dst_namespace,
            dst_service=dst_service,
            tls="true" if tls else "false",
        )

    @staticmethod
    def _header(name: str, out: list[str]) -> None:
        kind, help_text = _HEADERS[name]
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
