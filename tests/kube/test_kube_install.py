"""`meshtui install`: the manifests parse; the CRD schemas (generated from the pydantic models)
accept every example manifest of the fixtures and the docs and refuse the invalid ones of the
validation tests, as an API server would; the controller and gateway Deployments are what the
docs say."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
import yaml

from controller.install import InstallOptions, manifests, render
from controller.install.crds import crds
from controller.install.schema import NotStructural, structural
from controller.kube.resources import CUSTOM_RESOURCES
from controller.model.registry import BY_NAME
from tests.foundation.test_validation import CASES
from tests.kube.apiserver_validation import ApiServerModel, Refused

ROOT = Path(__file__).resolve().parents[2]
MESHTUI = str(Path(sys.executable).parent / "meshtui")
# Kinds that live in meshtui only, never in a Kubernetes cluster: no CRD on purpose.
MESHTUI_ONLY = {"Cluster": "the federation's members are meshtui's own list (the controller's state)",
                "Workload": "runs bundled sample apps in embedded clusters only",
                "ExternalService": "routes of embedded clusters' proxies only (docs/real-clusters.md, Limits)"}  # fmt: skip
# Invalid input a schema cannot see (meshtui refuses it in `meshtui apply`; in a cluster it is
# accepted by the API server and reported by meshtui instead).
NOT_A_SCHEMA_MATTER = {
    "unknown clusterKey": "names a federation member: the policy's status says Valid=False (UnknownCluster)",
    "duplicate documents": "two documents, each valid: kubectl applies both, in order",
}
# Why the API server refuses each of the others.
REFUSED_BECAUSE = {
    "unknown kind": "no matches for kind", "unknown lbType": "is not one of", "negative weight": "less than the minimum",
    "locality with two targets": "not valid under any", "missing name": "'name' is a required property",
    "malformed YAML": "malformed", "malformed JSON": "malformed", "unknown field": "'lbtype' was unexpected",
    "wrong api group": "no matches for kind", "unknown cluster": "'cluster' was unexpected",
}  # fmt: skip
_YAML_BLOCK = re.compile(r"```ya?ml\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def server() -> ApiServerModel:
    return ApiServerModel(crds())


def example_documents() -> list[tuple[str, dict]]:
    """Every manifest in tests/fixtures and in the YAML blocks of README.md and docs/*.md."""
    out = []
    for path in sorted((ROOT / "tests" / "fixtures").glob("*.yaml")):
        out += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if not path.exists():
            continue
        for i, block in enumerate(_YAML_BLOCK.findall(path.read_text())):
            try:
                docs = list(yaml.safe_load_all(block))
            except yaml.YAMLError:
                continue  # not a manifest (e.g. a shell transcript)
            out += [(f"{path.name} block {i + 1}", d) for d in docs if isinstance(d, dict) and "apiVersion" in d and "kind" in d]
    return out


def test_the_stream_parses_and_holds_every_part() -> None:
    text = render(InstallOptions(cluster="east", image="registry.example/meshtui:1"))
    docs = list(yaml.safe_load_all(text))
    assert all(isinstance(d, dict) and d["apiVersion"] and d["kind"] and d["metadata"]["name"] for d in docs)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("CustomResourceDefinition") == len(CUSTOM_RESOURCES)
    assert kinds.index("Namespace") > max(i for i, k in enumerate(kinds) if k == "CustomResourceDefinition")
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"} <= set(kinds)

    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    groups = {by_name[k]["spec"]["group"] for k in by_name if k[0] == "CustomResourceDefinition"}
    assert {"multicluster.flomesh.io", "multicluster.x-k8s.io", "meshtui.io"} <= groups
    for name in ("serviceexports.multicluster.flomesh.io", "serviceexports.multicluster.x-k8s.io", "serviceimports.multicluster.x-k8s.io"):
        version = by_name[("CustomResourceDefinition", name)]["spec"]["versions"][0]
        assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}

    controller = by_name[("Deployment", "meshtui-controller")]
    container = controller["spec"]["template"]["spec"]["containers"][0]
    command = container["command"][-1]
    assert "meshtui controller" in command and "--leader-elect" in command and "--lease-namespace meshtui-system" in command
    assert container["image"] == "registry.example/meshtui:1" and controller["spec"]["replicas"] == 2
    assert controller["spec"]["template"]["spec"]["serviceAccountName"] == "meshtui-controller"
    gateway = by_name[("Deployment", "meshtui-gateway")]["spec"]["template"]["spec"]["containers"][0]
    assert gateway["command"][:5] == ["python", "-m", "proxy", "--cluster", "east"]
    service = by_name[("Service", "meshtui-gateway")]
    assert service["spec"]["type"] == "LoadBalancer" and service["spec"]["ports"][0]["port"] == 4143


def test_options_are_checked_and_groups_can_be_skipped() -> None:
    with pytest.raises(ValueError, match="namespace 'Mesh_System' is not a DNS label"):
        InstallOptions(cluster="east", namespace="Mesh_System")
    docs = manifests(InstallOptions(cluster="east", skip_crd_groups=frozenset({"multicluster.x-k8s.io"})))
    assert not any(d["kind"] == "CustomResourceDefinition" and d["spec"]["group"] == "multicluster.x-k8s.io" for d in docs)


async def test_the_command_prints_the_stream_and_names_the_cluster_from_the_context(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "prod-east",
                                          "contexts": [], "clusters": [], "users": []}))  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig)}
    proc = await asyncio.create_subprocess_exec(MESHTUI, "--state", str(tmp_path / "s"), "install", "--namespace", "mesh",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    docs = list(yaml.safe_load_all(out))
    gateway = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "meshtui-gateway")
    assert gateway["metadata"]["namespace"] == "mesh" and "prod-east" in gateway["spec"]["template"]["spec"]["containers"][0]["command"]

    proc = await asyncio.create_subprocess_exec(MESHTUI, "--state", str(tmp_path / "s"), "install", "--namespace", "Bad!",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await proc.communicate()
    assert proc.returncode == 2 and b"not a DNS label" in err and out == b""


def test_every_crd_kind_has_a_structural_schema_of_its_model() -> None:
    for rt in CUSTOM_RESOURCES:
        assert structural(BY_NAME[rt.kind].spec)["type"] == "object"
    from pydantic import BaseModel

    class Choice(BaseModel):
        value: int | list[int]

    with pytest.raises(NotStructural, match="Choice.value"):
        structural(Choice)


def test_the_crds_accept_every_example_manifest(server: ApiServerModel) -> None:
    examples = example_documents()
    checked = set()
    for source, doc in examples:
        if doc["kind"] in MESHTUI_ONLY:
            assert not server.served(doc["apiVersion"], doc["kind"]), f"{doc['kind']} should have no CRD"
            continue
        try:
            server.admit(doc)
        except Refused as e:
            raise AssertionError(f"{source}: {doc['kind']} {doc['metadata'].get('name')} refused: {e}") from None
        checked.add(doc["kind"])
    assert {"ServiceExport", "GlobalTrafficPolicy", "Service"} <= checked


@pytest.mark.parametrize("name,manifest", [(c[0], c[1]) for c in CASES], ids=[c[0] for c in CASES])
def test_the_crds_refuse_what_meshtui_refuses(server: ApiServerModel, name: str, manifest: str) -> None:
    def apply(text: str) -> None:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            raise Refused(f"malformed: {e}") from None
        for doc in docs:
            if doc is not None:
                server.admit(doc)

    if name in NOT_A_SCHEMA_MATTER:
        apply(manifest)  # accepted by the API server: meshtui reports it instead
        return
    with pytest.raises(Refused, match=re.escape(REFUSED_BECAUSE[name])):
        apply(manifest)


def test_the_schema_refuses_a_rule_path_that_is_not_absolute(server: ApiServerModel) -> None:
    export = {"apiVersion": "multicluster.flomesh.io/v1alpha1", "kind": "ServiceExport", "metadata": {"name": "a"},
              "spec": {"rules": [{"portNumber": 80, "path": "relative"}]}}  # fmt: skip
    with pytest.raises(Refused, match="does not match"):
        server.admit(export)
    export["spec"]["rules"][0]["path"] = "/ok"
    server.admit(export)
