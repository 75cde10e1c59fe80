"""Shared test helpers: the reference scenario's manifests (import as tests.support)."""
from __future__ import annotations

from pathlib import Path


FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


async def apply_reference(controller, *, policy: str | None = None) -> None:
    """DESIGN section 8's starting state, applied as an operator would, file by file."""
    await controller.apply(fixture_text("fsm_clusters.yaml"))
    for cluster in ("cluster-1", "cluster-3"):
        await controller.apply(fixture_text(f"fsm_httpbin_{cluster}.yaml"), cluster=cluster)
        await controller.apply(fixture_text(f"fsm_export_{cluster}.yaml"), cluster=cluster)
    if policy:
        await controller.apply(fixture_text(policy), cluster="cluster-2", namespace="httpbin")
