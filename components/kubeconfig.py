"""Kubeconfig read back from the first server: parsed, never string-replaced."""

from __future__ import annotations

from typing import Any

import yaml


class KubeconfigError(ValueError):
    pass


def rewrite(text: str, server: str, name: str) -> str:
    """Point the kubeconfig at `server` and name its cluster, user and context `name`.

    K3s writes one cluster, one user and one context, all called `default`, with
    `server: https://127.0.0.1:6443`. Anything else is refused rather than guessed at.
    """
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig from the first server is not YAML: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Config":
        raise KubeconfigError("kubeconfig from the first server has no `kind: Config`")
    clusters, users, contexts = doc.get("clusters") or [], doc.get("users") or [], doc.get("contexts") or []
    if len(clusters) != 1 or len(users) != 1 or len(contexts) != 1:
        raise KubeconfigError(
            f"expected one cluster, user and context; found {len(clusters)}, {len(users)}, {len(contexts)}"
        )
    cluster = dict(clusters[0].get("cluster") or {})
    if "server" not in cluster:
        raise KubeconfigError("kubeconfig cluster has no `server`")
    cluster["server"] = server
    out = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": users[0].get("user") or {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(out, sort_keys=True)


def api_server_url(host: str, port: int = 6443) -> str:
    bracketed = f"[{host}]" if ":" in host else host
    return f"https://{bracketed}:{port}"
