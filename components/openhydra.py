"""open-hydra (seed 004). SKELETON — being written; not wired to resources yet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.k3s import NodeTarget
from stacks.model import Openhydra as OpenhydraConfig


@dataclass(frozen=True)
class OpenHydraArgs:
    config: OpenhydraConfig
    provider: k8s.Provider
    base_dir: Path
    nodes: list[NodeTarget]  # where host directories are created (empty: existing cluster)
    local_path_provided: bool  # the storage layer already runs K3s' local-path provisioner
    gateway_address: pulumi.Input[str]  # an address users reach NodePorts at


class OpenHydra(pulumi.ComponentResource):
    ui_url: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: OpenHydraArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:OpenHydra", name, None, opts)
        raise NotImplementedError("OpenHydra component: not written yet")
