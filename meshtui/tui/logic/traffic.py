"""How tap records and top statistics read in a table, and one request in full."""
from __future__ import annotations

from datetime import datetime, timezone

from ..live.traffic import TapRecord, TopKey, TopStats, is_failure
from . import fmt

TAP_COLUMNS = ("DIR", "FROM", "TO", "METHOD", "PATH", "STATUS", "LATENCY", "DURATION", "BYTES", "TLS")
TOP_COLUMNS = ("SOURCE", "DESTINATION", "METHOD", "PATH", "COUNT", "BEST", "WORST", "LAST", "SUCCESS")


def destination(rec: TapRecord) -> str:
    e = rec.last  # the response knows the endpoint's cluster when the request did not
    name = f"{e.dst_service}.{e.dst_namespace}" if e.dst_service else e.authority
    cluster = e.dst_cluster or rec.request.dst_cluster
    return f"{name}@{cluster}" if cluster else name


def tap_cells(rec: TapRecord) -> tuple[str, ...]:
    req, e = rec.request, rec.last
    answered, done = rec.phase != "request_init", rec.phase == "response_end"
    status = (str(e.status) if e.status else "-") + (f" {e.error}" if e.error else "")
    return (
        req.direction[:3], req.src_cluster or req.cluster, destination(rec), req.method, req.path,
        status if answered else "…", fmt.ms(e.latency_ms) if answered else "…",
        fmt.ms(e.duration_ms) if done else "…", str(e.bytes) if done else "…", "mTLS" if e.tls or req.tls else "-",
    )


def failed(rec: TapRecord) -> bool:
    return rec.phase != "request_init" and is_failure(rec.last)


def tap_detail(rec: TapRecord) -> str:
    req, e = rec.request, rec.last
    when = datetime.fromtimestamp(req.ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z") if req.ts else "-"
    grpc = f"  grpc-status {e.grpc_status}" if e.grpc_status is not None else ""
    return "\n".join([
        f"id {req.id}  {req.direction} observed in {req.cluster}  at {when}  ({rec.phase})",
        f"from {req.src_cluster or '-'}  identity {req.src_identity or '-'}",
        f"to   {destination(rec)}  endpoint {e.dst_endpoint or req.dst_endpoint or '-'}  tls {'yes' if e.tls or req.tls else 'no'}",
        f"{req.method} {req.scheme}://{req.authority}{req.path}",
        f"status {e.status or '-'}{grpc}  latency {fmt.ms(e.latency_ms)}  duration {fmt.ms(e.duration_ms)}  bytes {e.bytes}",
        f"error  {e.error}" if e.error else "",
    ]).rstrip()


def top_cells(key: TopKey, s: TopStats) -> tuple[str, ...]:
    src, dst, method, path = key
    return (src, dst, method, path, str(s.count), fmt.ms(s.best_ms), fmt.ms(s.worst_ms), fmt.ms(s.last_ms), fmt.pct(s.success_rate))
