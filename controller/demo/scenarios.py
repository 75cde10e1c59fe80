"""Demo scenarios: YAML files under controller/demo/scenarios/.

A scenario file is a multi-document manifest. Its first document is the header
(`kind: Scenario`: `metadata.name`, `description`, optional `traffic` flows the demo generates);
every other document is a resource applied as is, namespaced ones naming their cluster in
`metadata.cluster`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.errors import InvalidResource, NotFound
from controller.model.manifests import parse_documents

SCENARIO_DIR = Path(__file__).parent / "scenarios"
DEFAULT_SCENARIO = "default"


@dataclass(frozen=True, slots=True)
class TrafficFlow:
    """Requests the demo sends from a client inside `cluster`, at `rps` per second."""

    cluster: str
    url: str
    rps: float


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    documents: list[dict[str, Any]]
    traffic: tuple[TrafficFlow, ...]
    source: str


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def _flows(header: dict[str, Any], where: str) -> tuple[TrafficFlow, ...]:
    flows = []
    raw = header.get("traffic") or []
    if not isinstance(raw, list):
        raise InvalidResource(where, "traffic", "expected a list of {from, url, rps}")
    for i, f in enumerate(raw):
        field = f"traffic[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("from"), str) or not isinstance(f.get("url"), str):
            raise InvalidResource(where, field, "expected {from: CLUSTER, url: URL, rps: NUMBER}")
        rps = f.get("rps", 1)
        if not isinstance(rps, (int, float)) or rps <= 0:
            raise InvalidResource(where, f"{field}.rps", f"must be a positive number, got {rps!r}")
        flows.append(TrafficFlow(f["from"], f["url"], float(rps)))
    return tuple(flows)


def parse_scenario(text: str, source: str) -> Scenario:
    docs = parse_documents(text, source)
    if not docs or docs[0].get("kind") != "Scenario":
        raise InvalidResource(f"{source} document 1", "kind", "a scenario starts with a `kind: Scenario` header document")
    header, resources = docs[0], docs[1:]
    where = f"{source} document 1 (Scenario)"
    name = (header.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise InvalidResource(where, "metadata.name", "required field is missing")
    if not resources:
        raise InvalidResource(source, "", "a scenario needs at least one resource after its header")
    clusters = {d.get("metadata", {}).get("name") for d in resources if d.get("kind") == "Cluster"}
    flows = _flows(header, where)
    for i, flow in enumerate(flows):
        if flow.cluster not in clusters:
            raise InvalidResource(where, f"traffic[{i}].from", f"unknown cluster {flow.cluster!r}; the scenario defines {', '.join(sorted(clusters))}")
    return Scenario(name, str(header.get("description", "")).strip(), resources, flows, source)


def load_scenario(name_or_path: str) -> Scenario:
    """A bundled scenario by name, or a scenario file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise NotFound(f"no scenario {name_or_path!r}; bundled: {', '.join(scenario_names())}")
    return parse_scenario(path.read_text(), str(path))
