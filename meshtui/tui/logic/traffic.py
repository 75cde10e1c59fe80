"""How tap records and top statistics read in a table, and one request in full."""
from __future__ import annotations

from datetime import datetime, timezone

from ..live.traffic import TapRecord, TopKey, TopStats, is_failure
from . import fmt

TAP_COLUMNS = ("DIR", "FROM", "TO", "METHOD", "PATH", "STATUS", "LATENCY", "DURATION", "BYTES", "TLS")
TOP_COLUMNS = ("SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "BEST", "WORST", "LAST", "SUCCESS")


def destination(rec: TapRecord) -> str:
    e = rec.event
    name = f"{e.dst_service}.{e.dst_namespace}" if e.dst_service else e.authority
    return f"{name}@{e.dst_cluster}" if e.dst_cluster else name


def tap_cells(rec: TapRecord) -> tuple[str, ...]:
    e = rec.event
    done = rec.phase == "response_end"
    status = (str(e.status) if e.status else "-") + (f" {e.error}" if e.error else "")
    return (
        e.direction[:3], e.src_cluster or e.cluster, destination(rec), e.method, e.path,
        status if rec.phase != "request_init" else "…",
        fmt.ms(e.latency_ms) if rec.phase != "request_init" else "…",
        fmt.ms(e.duration_ms) if done else "…",
        str(e.bytes) if done else "…", "mTLS" if e.tls else "-",
    )


def failed(rec: TapRecord) -> bool:
    return rec.phase != "request_init" and is_failure(rec.event)


def tap_detail(rec: TapRecord) -> str:
    e = rec.event
    when = datetime.fromtimestamp(e.ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z") if e.ts else "-"
    grpc = f"  grpc-status {e.grpc_status}" if e.grpc_status is not None else ""
    return "\n".join([
        f"id {e.id}  {e.direction} observed in {e.cluster}  at {when}  ({rec.phase})",
        f"from {e.src_cluster or '-'}  identity {e.src_identity or '-'}",
        f"to   {destination(rec)}  endpoint {e.dst_endpoint or '-'}  tls {'yes' if e.tls else 'no'}",
        f"{e.method} {e.scheme}://{e.authority}{e.path}",
        f"status {e.status or '-'}{grpc}  latency {fmt.ms(e.latency_ms)}  duration {fmt.ms(e.duration_ms)}  bytes {e.bytes}",
        f"error  {e.error}" if e.error else "",
    ]).rstrip()


def top_cells(key: TopKey, s: TopStats) -> tuple[str, ...]:
    src, dst, method, path = key
    return (src, dst, method, path, str(s.count), fmt.ms(s.best_ms), fmt.ms(s.worst_ms), fmt.ms(s.last_ms), fmt.pct(s.success_rate))
