"""Every refusal names the document, the field and the reason, and stores nothing."""
import pytest

from controller.errors import InvalidResource
from tests.support import apply_reference

GTP = """apiVersion: flomesh.io/v1alpha1
kind: GlobalTrafficPolicy
metadata: {{name: httpbin, namespace: httpbin}}
spec:
{spec}
"""

CASES = [
    # (id, manifest, expected fragments of the message)
    ("unknown kind", "apiVersion: v1\nkind: Gizmo\nmetadata: {name: a}\n", ["document 2", "field kind", "unknown kind 'Gizmo'"]),
    ("unknown lbType", GTP.format(spec="  lbType: Nearest"), ["GlobalTrafficPolicy httpbin/httpbin", "spec.lbType", "Locality"]),
    (
        "negative weight",
        GTP.format(spec="  lbType: ActiveActive\n  targets: [{clusterKey: default/default/default/cluster-1, weight: -5}]"),
        ["spec.targets[0].weight", "greater than or equal to 0"],
    ),
    (
        "unknown clusterKey",
        GTP.format(spec="  lbType: FailOver\n  targets: [{clusterKey: default/default/default/cluster-9}]"),
        ["spec.targets[0].clusterKey", "no member cluster has clusterKey 'default/default/default/cluster-9'"],
    ),
    (
        "locality with two targets",
        GTP.format(spec="  lbType: Locality\n  targets: [{clusterKey: default/default/default/cluster-1}, {clusterKey: default/default/default/cluster-3}]"),
        ["field spec", "Locality allows at most one target"],
    ),
    ("missing name", "apiVersion: v1\nkind: Service\nmetadata: {namespace: a}\nspec: {ports: [{port: 80}]}\n", ["metadata.name", "required field is missing"]),
    ("malformed YAML", "apiVersion: v1\nkind: Service\nmetadata: {name: a\n", ["malformed YAML", "line"]),
    ("malformed JSON", '{"apiVersion": "v1", "kind": ', ["malformed JSON", "line 1"]),
    (
        "duplicate documents",
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\nspec: {ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\nspec: {ports: [{port: 81}]}\n",
        ["document 3", "duplicate of", "document 2"],
    ),
    ("unknown field", GTP.format(spec="  lbtype: FailOver"), ["spec.lbtype", "unknown field"]),
    ("wrong api group", "apiVersion: v1\nkind: GlobalTrafficPolicy\nmetadata: {name: a}\nspec: {}\n", ["apiVersion", "not served by 'v1'"]),
    ("unknown cluster", "apiVersion: v1\nkind: Service\nmetadata: {name: a, cluster: nowhere}\nspec: {ports: [{port: 80}]}\n", ["metadata.cluster", "unknown cluster 'nowhere'"]),
]


@pytest.mark.parametrize("manifest,fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_invalid_input_is_refused_with_its_reason_and_nothing_stored(controller, manifest, fragments):
    await apply_reference(controller)
    before = {k: dict(v) for k, v in controller.core.store.objects.items()}
    revision = controller.core.store.revision
    # a valid document first: all or nothing means it must not be stored either
    good = "apiVersion: v1\nkind: Service\nmetadata: {name: innocent, namespace: httpbin}\nspec: {ports: [{port: 80}]}\n---\n"
    with pytest.raises(InvalidResource) as e:
        await controller.apply(manifest if manifest.startswith("{") else good + manifest, cluster="cluster-2", source="bad.yaml")
    message = str(e.value)
    assert message.startswith("bad.yaml")
    for fragment in fragments:
        assert fragment in message, message
    assert controller.core.store.objects == before
    assert controller.core.store.revision == revision


async def test_kind_aliases(controller):
    from controller.model import lookup

    for alias, kind in [("svcexp", "ServiceExport"), ("serviceexports", "ServiceExport"), ("gtp", "GlobalTrafficPolicy"),
                        ("serviceexports.flomesh.io", "ServiceExport"), ("svc", "Service"), ("ServiceImports", "ServiceImport"),
                        ("ts", "TrafficSplit"), ("eps", "EndpointSlice"), ("cl", "Cluster")]:
        assert lookup(alias).name == kind
    assert lookup("gizmos") is None
