"""Octopus (seed 001). SKELETON — being written; not wired to resources yet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stacks.model import Octopus as OctopusConfig


@dataclass(frozen=True)
class OctopusArgs:
    config: OctopusConfig
    provider: k8s.Provider
    base_dir: Path
    kubernetes_version: str  # "1.30" for the pinned K3s, "" when unknown (existing cluster)
    storage_class: str | None  # the default StorageClass name (PVCs here bind static PVs instead)


class Octopus(pulumi.ComponentResource):
    url: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    grafana_url: pulumi.Output[str]

    def __init__(self, name: str, args: OctopusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:Octopus", name, None, opts)
        raise NotImplementedError("Octopus component: not written yet")

    def outputs(self) -> dict[str, Any]:
        return {}
