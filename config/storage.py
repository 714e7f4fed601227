"""Storage config: the default StorageClass and an optional NFS ReadWriteMany class."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from config.base import ChartSource, Model
from config.fields import Host, K8sObjectName, NodePath


class LocalStatic(Model):
    """Seed 000's test mode: fake disks bind-mounted on each node, served by local-static-provisioner."""

    disks_per_node: int = Field(default=5, ge=1, le=50)
    disk_dir: NodePath = Field(default="/mnt/fake-disks", description="Where the bind-mounted disks appear.")
    backing_dir: NodePath = Field(default="/var/lib/ai-platform/disks", description="Backing directories on the node.")
    class_name: K8sObjectName = "local-disks"
    chart: ChartSource = Field(
        default_factory=lambda: ChartSource(
            repository="https://kubernetes-sigs.github.io/sig-storage-local-static-provisioner",
            name="local-static-provisioner",
            version="2.0.0",
        )
    )


class Nfs(Model):
    server: Host = Field(description="NFS server address.")
    path: NodePath = Field(description="Exported path.")
    class_name: K8sObjectName = "nfs-rwx"
    chart: ChartSource = Field(
        default_factory=lambda: ChartSource(
            repository="https://kubernetes-sigs.github.io/nfs-subdir-external-provisioner",
            name="nfs-subdir-external-provisioner",
            version="4.0.18",
        )
    )


class Storage(Model):
    enabled: bool = True
    mode: Literal["local-path", "local-static"] = Field(
        default="local-path", description="Default StorageClass: K3s local-path, or local-static (fake disks)."
    )
    local_static: LocalStatic = Field(default_factory=LocalStatic)
    nfs: Nfs | None = Field(
        default=None,
        description="An NFS-backed ReadWriteMany StorageClass. Every node needs the NFS client (nfs-common / "
        "nfs-utils): the install step checks for mount.nfs and fails naming the node.",
    )
