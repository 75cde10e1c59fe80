"""The Kubernetes backend: member clusters reached with the official `kubernetes` client.

- `backend.KubeBackend(core)`: every controller's entry point: routes writes to
  Kubernetes-backed clusters' API servers, follows those clusters once started (optionally
  under leader election, controller/leader.py), and checks them.
- `sync.ClusterSync`: one cluster kept in step with the resource core (watches in, derived
  ServiceImports and statuses out); `mirror.ClusterMirror` and `objects` are its pure parts.
- `client.new_api_client(kubeconfig, context)`: an ApiClient from a kubeconfig path or text.
- `rest.KubeRest`: blocking verbs on any `resources.ResourceType`, plain dicts in and out.
- `watching.ResourceWatcher` / `ClusterWatch`: list-then-watch loops feeding `KubeEvent`s
  into an asyncio queue (SYNCED after each list, DISCONNECTED/FAILING/RECOVERED on trouble).
- `writer.KubeWriter`: create-or-update and status writes with resourceVersion conflict retries.
- `permissions.GRANTS`: every verb the controller uses, the source of the install's RBAC.
- `checks.kube_checks`: `meshtui check` items about these clusters.

Only `backend`, `objects`, `mirror`, `checks`, `permissions` and `resources` load without the
`kubernetes` package being imported (it takes about a second to import).
"""
