"""Which cluster and service calls which: edges from ServiceImports (who may call) joined with
golden edge metrics (who does, how well), drawn as a tree per calling cluster and an RPS matrix."""
from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from controller.interface import GoldenRow

from ..live.cache import ResourceCache
from . import fmt
from .clusters import names_by_key
from .services import import_sources


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    dst: str
    namespace: str
    service: str
    success_rate: float | None = None
    rps: float | None = None  # None: no traffic measured on this edge


def federation_edges(cache: ResourceCache, traffic: list[GoldenRow]) -> list[Edge]:
    by_key = names_by_key(cache.list("Cluster"))
    edges: dict[tuple[str, str, str, str], Edge] = {}
    for imp in cache.list("ServiceImport"):
        md = imp["metadata"]
        for dst in import_sources(imp, by_key):
            edges[(md["cluster"], dst, md["namespace"], md["name"])] = Edge(md["cluster"], dst, md["namespace"], md["name"])
    for r in traffic:
        key = (r.src_cluster, r.dst_cluster, r.namespace, r.service)
        edges[key] = Edge(*key, success_rate=r.success_rate, rps=r.rps)
    return [edges[k] for k in sorted(edges)]


def render_topology(clusters: list[str], edges: list[Edge], production: frozenset[str], *,
                    accent: str = "bold", bad: str = "red", dim: str = "dim") -> Text:
    out = Text()
    by_src: dict[str, list[Edge]] = {}
    for e in edges:
        by_src.setdefault(e.src, []).append(e)
    width = max((len(f"{e.service}.{e.namespace}") for e in edges), default=10)
    for src in clusters:
        out.append(src, style=accent if src in production else "bold")
        mine = by_src.get(src, [])
        out.append(f"  calls {len({e.dst for e in mine})} cluster(s)\n" if mine else "  (no outbound edges)\n", style=dim)
        for i, e in enumerate(mine):
            out.append(" └─▶ " if i == len(mine) - 1 else " ├─▶ ")
            out.append(f"{e.dst:<12}", style=accent if e.dst in production else "")
            out.append(f" {e.service + '.' + e.namespace:<{width}}  ")
            if e.rps is None:
                out.append("idle\n", style=dim)
                continue
            sr_style = bad if e.success_rate is not None and e.success_rate < 0.95 else ""
            out.append(f"SR {fmt.pct(e.success_rate):>8}", style=sr_style)
            out.append(f"   RPS {fmt.rps(e.rps):>7}\n")
        out.append("\n")
    out.append_text(rps_matrix(clusters, edges))
    return out


def rps_matrix(clusters: list[str], edges: list[Edge]) -> Text:
    total: dict[tuple[str, str], float] = {}
    for e in edges:
        if e.rps is not None:
            total[(e.src, e.dst)] = total.get((e.src, e.dst), 0.0) + e.rps
    w = max([len(c) for c in clusters] + [9])
    out = Text("RPS  from ↓ to →\n", style="bold")
    out.append(" " * (w + 2) + "".join(f"{c:>{w + 2}}" for c in clusters) + "\n")
    for src in clusters:
        cells = "".join(f"{fmt.rps(total[(src, dst)]) if (src, dst) in total else '-':>{w + 2}}" for dst in clusters)
        out.append(f"{src:<{w + 2}}{cells}\n")
    return out
