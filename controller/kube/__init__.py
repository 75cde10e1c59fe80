"""The Kubernetes backend: member clusters reached with the official `kubernetes` client.

- `client.new_api_client(kubeconfig, context)`: an ApiClient from a kubeconfig path or text.
- `rest.KubeRest`: blocking verbs on any `resources.ResourceType`, plain dicts in and out.
- `watching.ResourceWatcher` / `ClusterWatch`: list-then-watch loops feeding `KubeEvent`s
  into an asyncio queue (SYNCED after each list, DISCONNECTED/FAILING/RECOVERED on trouble).
- `writer.KubeWriter`: create-or-update and status writes with resourceVersion conflict retries.
"""
