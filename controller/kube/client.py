"""One place that turns a Cluster's kubeconfig into an official `kubernetes` ApiClient."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration

from controller.errors import InvalidResource

# Every watched resource holds one connection for its watch; writes and relists need a few more.
POOL_SIZE = 32
# One immediate retry absorbs a keep-alive connection the server closed; beyond that the
# watchers' backoff and the writers' callers decide.
RETRIES = 1


def new_api_client(kubeconfig: str | Path | None = None, context: str | None = None) -> ApiClient:
    """An ApiClient for `context` (the kubeconfig's current context when None) of `kubeconfig`:
    a file path, inline kubeconfig text (YAML or JSON), or None for the user's default
    kubeconfig ($KUBECONFIG or ~/.kube/config). Each call makes an independent client, so
    several clusters can be talked to at once."""
    cfg = Configuration()
    cfg.connection_pool_maxsize = POOL_SIZE
    cfg.retries = RETRIES
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
            path = str(Path(kubeconfig).expanduser()) if kubeconfig is not None else None
            kube_config.load_kube_config(
                config_file=path, context=context, client_configuration=cfg, persist_config=False
            )
    except yaml.YAMLError as e:
        raise InvalidResource(where, "", f"is not valid YAML: {e}") from e
    except (kube_config.ConfigException, OSError) as e:
        raise InvalidResource(where, "context" if context else "", str(e)) from e
    return ApiClient(configuration=cfg)
