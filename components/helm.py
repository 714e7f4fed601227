"""A Helm release of a configured chart: a local chart (airgap) wins over the repository
and its pinned version."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from config.base import ChartSource


def release(
    resource_name: str,
    source: ChartSource,
    *,
    name: str,
    namespace: pulumi.Input[str],
    values: Any,
    opts: pulumi.ResourceOptions,
    **extra: Any,
) -> k8s.helm.v3.Release:
    """A `helm.v3.Release` named NAME in NAMESPACE from SOURCE (`extra`: other Release args)."""
    local = source.local_path
    return k8s.helm.v3.Release(
        resource_name,
        chart=local or source.name,
        version=None if local else source.version,
        repository_opts=None if local else k8s.helm.v3.RepositoryOptsArgs(repo=source.repository),
        name=name,
        namespace=namespace,
        values=values,
        opts=opts,
        **extra,
    )
