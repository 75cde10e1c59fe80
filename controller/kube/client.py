"""One place that turns a Cluster's kubeconfig (or the pod's service account) into an official
`kubernetes` ApiClient."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration

from controller.errors import InvalidResource

# urllib3 warns of every retried connection; the watchers report an outage once, with its cause.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

# Every watched resource holds one connection for its watch; writes and relists need a few more.
POOL_SIZE = 32
# One immediate retry absorbs a keep-alive connection the server closed; beyond that the
# watchers' backoff and the writers' callers decide.
RETRIES = 1
USER_AGENT = "meshtui-controller"


def _configuration() -> Configuration:
    cfg = Configuration()
    cfg.connection_pool_maxsize = POOL_SIZE
    cfg.retries = RETRIES
    return cfg


def _client(cfg: Configuration) -> ApiClient:
    api = ApiClient(configuration=cfg)
    api.user_agent = USER_AGENT
    return api


def in_pod() -> bool:
    """True inside a Kubernetes pod (the kubelet sets KUBERNETES_SERVICE_HOST)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def new_in_cluster_api_client() -> ApiClient:
    """An ApiClient of the pod's own service account, for the cluster the pod runs in."""
    cfg = _configuration()
    try:
        kube_config.load_incluster_config(client_configuration=cfg)
    except kube_config.ConfigException as e:
        raise InvalidResource("in-cluster configuration", "", str(e)) from e
    return _client(cfg)


def new_api_client(kubeconfig: str | Path | None = None, context: str | None = None) -> ApiClient:
    """An ApiClient for `context` (the kubeconfig's current context when None) of `kubeconfig`:
    a file path, inline kubeconfig text (YAML or JSON), or None for the user's default
    kubeconfig ($KUBECONFIG or ~/.kube/config). Each call makes an independent client, so
    several clusters can be talked to at once."""
    cfg = _configuration()
    text = (
        kubeconfig
        if isinstance(kubeconfig, str) and ("\n" in kubeconfig or kubeconfig.lstrip().startswith("{"))
        else None
    )
    where = "inline kubeconfig" if text is not None else f"kubeconfig {kubeconfig or '(default)'}"
    try:
        if text is not None:
            doc = yaml.safe_load(text)
            if not isinstance(doc, dict):
                raise InvalidResource(where, "", "is not a kubeconfig document (expected a mapping)")
            kube_config.load_kube_config_from_dict(doc, context=context, client_configuration=cfg, persist_config=False)
        else:
            # $KUBECONFIG is read now: the library reads it once, when it is imported.
            path = str(Path(kubeconfig).expanduser()) if kubeconfig is not None else os.environ.get("KUBECONFIG") or None
            kube_config.load_kube_config(
                config_file=path, context=context, client_configuration=cfg, persist_config=False
            )
    except yaml.YAMLError as e:
        raise InvalidResource(where, "", f"is not valid YAML: {e}") from e
    except (kube_config.ConfigException, OSError) as e:
        raise InvalidResource(where, "context" if context else "", str(e)) from e
    return _client(cfg)
