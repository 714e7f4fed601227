"""The wiring: validated config → components, in dependency order → stack outputs.

This is the only place that knows how layers feed each other. Data flows one way:
each component takes typed args (and the cluster's provider) and exposes outputs that
later components take as inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from components.k3s import K3sCluster, K3sClusterArgs
from stacks.model import StackConfig


@dataclass
class Platform:
    cluster: K3sCluster
    outputs: dict[str, Any] = field(default_factory=dict)


def node_labels(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """Labels platform layers need on named nodes, applied by the K3s component."""
    labels: dict[str, dict[str, str]] = {}
    if cfg.octopus is not None and cfg.octopus.enabled:
        for name in cfg.octopus.nodes:
            labels.setdefault(name, {})[cfg.octopus.node_selector_key] = cfg.octopus.node_selector_value
    return labels


def build(cfg: StackConfig, stack: str, base_dir: Path) -> Platform:
    cluster = K3sCluster(
        "k3s",
        K3sClusterArgs(cluster=cfg.cluster, stack=stack, base_dir=base_dir, extra_labels=node_labels(cfg)),
    )
    cluster.rollout_registries(None)
    outputs: dict[str, Any] = {
        "kubeconfig": cluster.kubeconfig,
        "apiServer": cluster.api_server,
        "nodes": cluster.nodes,
    }
    return Platform(cluster=cluster, outputs=outputs)


def export(platform: Platform) -> None:
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
