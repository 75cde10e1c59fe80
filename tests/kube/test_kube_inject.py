"""`meshtui inject`: the sidecar and its annotations go into Pods and the pod templates of
Deployments, StatefulSets and DaemonSets (also inside a List); every other document passes
through byte for byte; injecting twice changes nothing; bad YAML is refused with its place."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import yaml

from controller.errors import InvalidResource
from controller.install.inject import SIDECAR, InjectOptions, inject_stream

MESHTUI = str(Path(sys.executable).parent / "meshtui")
OPTIONS = InjectOptions(image="registry.example/meshtui:1", cluster="east", proxy_version="1.2.3")

CONFIGMAP = """# a comment kept as written
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}   # flow style kept too
data:
  greeting: "hello"
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx}
"""
STATEFULSET = DEPLOYMENT.replace("Deployment", "StatefulSet").replace("name: web,", "name: db,")
DAEMONSET = DEPLOYMENT.replace("Deployment", "DaemonSet").replace("name: web,", "name: agent,")
POD = """apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  containers: [{name: shell, image: busybox}]
"""
SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
"""


def containers(doc: dict) -> list[dict]:
    pod = doc if doc["kind"] == "Pod" else doc["spec"]["template"]
    return pod["spec"]["containers"]


def annotations(doc: dict) -> dict:
    pod = doc if doc["kind"] == "Pod" else doc["spec"]["template"]
    return pod["metadata"]["annotations"]


def test_workloads_get_the_sidecar_and_other_documents_pass_through_unchanged() -> None:
    stream = "---\n".join([CONFIGMAP, DEPLOYMENT, SERVICE, STATEFULSET, DAEMONSET, POD])
    out, report = inject_stream(stream, OPTIONS)
    assert report.injected == ["deployment/web", "statefulset/db", "daemonset/agent", "pod/debug"]
    assert report.skipped == 2
    assert out.startswith(CONFIGMAP + "---\n")  # byte for byte, comments and all
    assert f"---\n{SERVICE}---\n" in out
    docs = list(yaml.safe_load_all(out))
    for doc in docs:
        if doc["kind"] in ("ConfigMap", "Service"):
            continue
        names = [c["name"] for c in containers(doc)]
        assert names[-1] == SIDECAR and len(names) == 2
        sidecar = containers(doc)[-1]
        assert sidecar["image"] == OPTIONS.image and sidecar["command"][:5] == ["python", "-m", "proxy", "--cluster", "east"]
        assert "--outbound" in sidecar["command"] and sidecar["securityContext"]["runAsNonRoot"] is True
        a = annotations(doc)
        assert a["meshtui.io/inject"] == "enabled" and a["meshtui.io/proxy-version"] == "1.2.3" and a["meshtui.io/cluster"] == "east"
        assert a["kubectl.kubernetes.io/default-container"] == names[0]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "web"}  # the rest of the template kept


def test_injecting_twice_changes_nothing_and_a_new_image_replaces_the_sidecar() -> None:
    stream = "---\n".join([CONFIGMAP, DEPLOYMENT, POD])
    once, _ = inject_stream(stream, OPTIONS)
    twice, report = inject_stream(once, OPTIONS)
    assert twice == once
    assert report.injected == [] and report.unchanged == ["deployment/web", "pod/debug"]

    upgraded, report = inject_stream(once, InjectOptions(image="registry.example/meshtui:2", cluster="east", proxy_version="2"))
    assert report.injected == ["deployment/web", "pod/debug"]
    for doc in yaml.safe_load_all(upgraded):
        if doc["kind"] != "ConfigMap":
            assert [c["image"] for c in containers(doc) if c["name"] == SIDECAR] == ["registry.example/meshtui:2"]


def test_a_list_is_injected_item_by_item() -> None:
    items = [yaml.safe_load(DEPLOYMENT), yaml.safe_load(SERVICE)]
    out, report = inject_stream(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}), OPTIONS)
    [doc] = list(yaml.safe_load_all(out))
    assert [c["name"] for c in containers(doc["items"][0])] == ["web", SIDECAR]
    assert doc["items"][1] == items[1] and report.injected == ["deployment/web"]


def test_bad_yaml_is_refused_with_its_place() -> None:
    with pytest.raises(InvalidResource, match=r"app.yaml document 2: malformed YAML at line 11"):
        inject_stream(CONFIGMAP + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: x\n", OPTIONS, "app.yaml")


async def test_the_command_reads_stdin_and_writes_the_stream(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        MESHTUI, "--state", str(tmp_path / "s"), "inject", "-f", "-", "--cluster", "west", "--image", "img:9",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    out, err = await proc.communicate(("---\n".join([SERVICE, DEPLOYMENT])).encode())
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith(SERVICE + "---\n") and "deployment/web injected" in err.decode()
    deployment = list(yaml.safe_load_all(out))[1]
    assert containers(deployment)[-1]["image"] == "img:9" and "west" in containers(deployment)[-1]["command"]
