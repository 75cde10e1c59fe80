"""`meshtui inject`: the proxy sidecar added to the workloads of a YAML stream, like `linkerd
inject` (pure: text in, text out).

Pods, and the pod templates of Deployments, StatefulSets, DaemonSets (also inside a `List`),
get a `meshtui-proxy` container (the bundled proxy: outbound listener on the pod's loopback,
admin and metrics port) and the annotations that say so. Every other document, and every
workload already injected as it would be now, is passed through byte for byte, so injecting
twice changes nothing.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import yaml

from controller.errors import InvalidResource
from controller.reconcile.state import ADMIN_PORT, OUTBOUND_PORT

Obj = dict[str, Any]
SIDECAR = "meshtui-proxy"
INJECT_ANNOTATION = "meshtui.io/inject"
VERSION_ANNOTATION = "meshtui.io/proxy-version"
CLUSTER_ANNOTATION = "meshtui.io/cluster"
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
PROXY_UID = 2102
TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
_SEPARATOR = re.compile(r"^---[ \t]*(#.*)?\r?$")


def package_version() -> str:
    try:
        return version("meshtui")
    except PackageNotFoundError:
        return "dev"


@dataclass(frozen=True)
class InjectOptions:
    image: str
    cluster: str
    proxy_version: str = field(default_factory=package_version)


@dataclass
class InjectReport:
    injected: list[str] = field(default_factory=list)  # "deployment/web"
    unchanged: list[str] = field(default_factory=list)  # workloads already injected as wanted
    skipped: int = 0  # documents that are not workloads


def sidecar(options: InjectOptions) -> Obj:
    return {
        "name": SIDECAR,
        "image": options.image,
        "command": ["python", "-m", "proxy", "--cluster", options.cluster,
                    "--outbound", f"127.0.0.1:{OUTBOUND_PORT}", "--admin", f"0.0.0.0:{ADMIN_PORT}"],
        "env": [{"name": "MESHTUI_ADMIN_TOKEN",
                 "valueFrom": {"secretKeyRef": {"name": "meshtui-proxy-admin", "key": "token", "optional": True}}}],
        "ports": [{"name": "meshtui-admin", "containerPort": ADMIN_PORT}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": ADMIN_PORT}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/live", "port": ADMIN_PORT}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "runAsUser": PROXY_UID, "capabilities": {"drop": ["ALL"]}},
    }  # fmt: skip


def inject_pod(template: Obj, options: InjectOptions) -> Obj:
    """A pod (or pod template) with the sidecar; an existing one is replaced in place."""
    out = copy.deepcopy(template)
    spec = out.setdefault("spec", {})
    containers = spec.setdefault("containers", [])
    wanted = sidecar(options)
    at = next((i for i, c in enumerate(containers) if c.get("name") == SIDECAR), None)
    if at is None:
        containers.append(wanted)
    else:
        containers[at] = wanted
    annotations = out.setdefault("metadata", {}).setdefault("annotations", {}) or {}
    out["metadata"]["annotations"] = annotations
    annotations[INJECT_ANNOTATION] = "enabled"
    annotations[VERSION_ANNOTATION] = options.proxy_version
    annotations[CLUSTER_ANNOTATION] = options.cluster
    apps = [c.get("name") for c in containers if c.get("name") != SIDECAR]
    if apps and DEFAULT_CONTAINER_ANNOTATION not in annotations:
        annotations[DEFAULT_CONTAINER_ANNOTATION] = apps[0]  # `kubectl logs/exec` keep picking the app
    return out


def inject_document(doc: Any, options: InjectOptions, report: InjectReport) -> Any:
    """`doc` with its workloads injected (the same object when nothing is one)."""
    if not isinstance(doc, dict):
        report.skipped += 1
        return doc
    kind = doc.get("kind")
    if kind == "List" and isinstance(doc.get("items"), list):
        items = [inject_document(item, options, report) for item in doc["items"]]
        return doc if all(a is b for a, b in zip(items, doc["items"])) else {**doc, "items": items}
    name = f"{str(kind).lower()}/{(doc.get('metadata') or {}).get('name', '')}"
    if kind == "Pod":
        injected = inject_pod(doc, options)
    elif kind in TEMPLATE_KINDS and isinstance((doc.get("spec") or {}).get("template"), dict):
        injected = {**doc, "spec": {**doc["spec"], "template": inject_pod(doc["spec"]["template"], options)}}
    else:
        report.skipped += 1
        return doc
    if injected == doc:
        report.unchanged.append(name)
        return doc
    report.injected.append(name)
    return injected


def _chunks(text: str) -> list[tuple[str, bool]]:
    """The stream cut at its `---` lines: (text, is_separator), concatenating back to `text`."""
    out: list[tuple[str, bool]] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if _SEPARATOR.match(line.rstrip("\n")):
            out.append(("".join(current), False))
            out.append((line, True))
            current = []
        else:
            current.append(line)
    out.append(("".join(current), False))
    return out


def inject_stream(text: str, options: InjectOptions, source: str = "input") -> tuple[str, InjectReport]:
    report = InjectReport()
    out: list[str] = []
    number, line = 0, 0  # documents and lines before this chunk
    for chunk, separator in _chunks(text):
        first_line, line = line, line + chunk.count("\n")
        if separator:
            out.append(chunk)
            continue
        number += 1
        try:
            docs = list(yaml.safe_load_all(chunk))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {first_line + mark.line + 1} column {mark.column + 1}" if mark else ""
            raise InvalidResource(f"{source} document {number}", "", f"malformed YAML{where}: {getattr(e, 'problem', e)}") from None
        injected = [inject_document(d, options, report) for d in docs if d is not None]
        if all(a is b for a, b in zip(injected, [d for d in docs if d is not None])):
            out.append(chunk)
        else:
            out.append("---\n".join(yaml.safe_dump(d, sort_keys=False) for d in injected))
    return "".join(out), report
