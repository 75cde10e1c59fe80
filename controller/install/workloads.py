"""The controller and gateway Deployments (and the gateway's Service) for one member cluster.

The controller runs headless (`meshtui controller`) with leader election through a
coordination.k8s.io Lease, so several replicas may run and one writes. Its federation (the
Cluster manifests, with inline kubeconfigs or contexts of the kubeconfig next to them) comes
from the Secret `meshtui-federation`, applied into the pod's state dir at start. Its API
listens on the pod's loopback only (reach it with `kubectl port-forward`).

The gateway runs the bundled proxy's gateway listener behind a LoadBalancer Service: other
clusters' imports point at that Service's address (the Cluster's spec.gatewayHost).
"""

from __future__ import annotations

from typing import Any

from controller.install.rbac import CONTROLLER
from controller.reconcile.state import ADMIN_PORT, GATEWAY_PORT

Obj = dict[str, Any]
GATEWAY = "meshtui-gateway"
FEDERATION_SECRET = "meshtui-federation"
FEDERATION_DIR = "/etc/meshtui/federation"
STATE_DIR = "/var/lib/meshtui"
API_PORT = 8085
NON_ROOT = 65532
_PROBE = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=2)"


def _labels(base: dict[str, str], component: str) -> dict[str, str]:
    return {**base, "app.kubernetes.io/component": component}


def _pod_security() -> Obj:
    return {"runAsNonRoot": True, "runAsUser": NON_ROOT, "runAsGroup": NON_ROOT, "fsGroup": NON_ROOT,
            "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip


def _container_security() -> Obj:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def _spread(selector: dict[str, str]) -> Obj:
    """Replicas on different nodes when possible."""
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
        "weight": 100,
        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": selector}},
    }]}}  # fmt: skip


def namespace_doc(namespace: str, labels: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": dict(labels)}}


def controller_command(namespace: str, lease_name: str, lease_duration: float) -> str:
    return (f"meshtui apply -f {FEDERATION_DIR} && exec meshtui controller --api 127.0.0.1:{API_PORT} "
            f"--log-format json --leader-elect --lease-namespace {namespace} --lease-name {lease_name} "
            f"--lease-duration {lease_duration:g}")  # fmt: skip


def controller_deployment(namespace: str, image: str, replicas: int, lease_name: str, lease_duration: float,
                          labels: dict[str, str]) -> Obj:  # fmt: skip
    selector = _labels({"app.kubernetes.io/name": "meshtui"}, "controller")
    probe = lambda path: {"exec": {"command": ["python", "-c", _PROBE.format(port=API_PORT, path=path)]},  # noqa: E731
                          "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}  # fmt: skip
    container = {
        "name": "controller",
        "image": image,
        "command": ["sh", "-c", controller_command(namespace, lease_name, lease_duration)],
        "env": [
            {"name": "MESHTUI_STATE", "value": STATE_DIR},
            {"name": "KUBECONFIG", "value": f"{FEDERATION_DIR}/kubeconfig"},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        ],
        "startupProbe": {**probe("/healthz"), "periodSeconds": 2, "failureThreshold": 60},
        "livenessProbe": probe("/healthz"),
        "readinessProbe": probe("/readyz"),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "federation", "mountPath": FEDERATION_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": CONTROLLER, "namespace": namespace, "labels": _labels(labels, "controller")},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**_labels(labels, "controller"), **selector}},
                "spec": {
                    "serviceAccountName": CONTROLLER,
                    "securityContext": _pod_security(),
                    "affinity": _spread(selector),
                    "containers": [container],
                    "volumes": [
                        {"name": "state", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "federation", "secret": {"secretName": FEDERATION_SECRET, "defaultMode": 0o400}},
                    ],
                },
            },
        },
    }


def gateway_docs(namespace: str, image: str, replicas: int, cluster: str, service_type: str,
                 labels: dict[str, str]) -> list[Obj]:  # fmt: skip
    selector = _labels({"app.kubernetes.io/name": "meshtui"}, "gateway")
    meta_labels = _labels(labels, "gateway")
    container = {
        "name": "gateway",
        "image": image,
        "command": ["python", "-m", "proxy", "--cluster", cluster, "--gateway", f"0.0.0.0:{GATEWAY_PORT}",
                    "--admin", f"0.0.0.0:{ADMIN_PORT}", "--config-file", f"{STATE_DIR}/gateway/config.json"],
        "env": [{"name": "MESHTUI_ADMIN_TOKEN",
                 "valueFrom": {"secretKeyRef": {"name": f"{GATEWAY}-admin", "key": "token", "optional": True}}}],
        "ports": [{"name": "gateway", "containerPort": GATEWAY_PORT}, {"name": "admin", "containerPort": ADMIN_PORT}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "admin"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/live", "port": "admin"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "config", "mountPath": f"{STATE_DIR}/gateway"}],
    }  # fmt: skip
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": False,
         "metadata": {"name": GATEWAY, "namespace": namespace, "labels": meta_labels}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": GATEWAY, "namespace": namespace, "labels": meta_labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": {**meta_labels, **selector},
                        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(ADMIN_PORT)},
                    },
                    "spec": {
                        "serviceAccountName": GATEWAY,
                        "automountServiceAccountToken": False,
                        "securityContext": _pod_security(),
                        "affinity": _spread(selector),
                        "containers": [container],
                        "volumes": [{"name": "config", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": GATEWAY, "namespace": namespace, "labels": meta_labels},
            "spec": {
                "type": service_type,
                "selector": selector,
                "ports": [{"name": "gateway", "port": GATEWAY_PORT, "targetPort": "gateway", "protocol": "TCP"}],
            },
        },
    ]  # fmt: skip
