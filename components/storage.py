"""Storage: a default StorageClass with dynamic provisioning, and an optional RWX class.

- `local-path`: K3s ships the local-path provisioner and its `local-path` class; this
  component only makes sure that class is the default (a StorageClassPatch).
- `local-static` (seed 000's test mode): each node gets N directories bind-mounted under
  `/mnt/fake-disks` (a remote command, undone on delete), served by the pinned
  local-static-provisioner chart as the default class.
- `nfs`: the pinned nfs-subdir-external-provisioner chart as a ReadWriteMany class, which
  Dataflow's Label Studio needs in production.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import remote

from components import helm, scripts
from components.k3s import NodeTarget
from config.storage import Storage

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class StorageArgs:
    config: Storage
    provider: k8s.Provider
    nodes: list[NodeTarget]


class StorageLayer(pulumi.ComponentResource):
    default_class: pulumi.Output[str]
    rwx_class: pulumi.Output[str | None]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:Storage", name, None, opts)
        cfg = args.config
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)

        if cfg.mode == "local-path":
            k8s.storage.v1.StorageClassPatch(
                f"{name}-local-path-default",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name="local-path", annotations={DEFAULT_CLASS_ANNOTATION: "true"}
                ),
                opts=k8s_opts,
            )
            default_class = "local-path"
        else:
            ls = cfg.local_static
            disks: list[pulumi.Resource] = []
            for node in args.nodes:
                disk_args = {"count": str(ls.disks_per_node), "dir": ls.disk_dir, "backing": ls.backing_dir}
                disks.append(
                    remote.Command(
                        f"{name}-{node.name}-fake-disks",
                        connection=node.connection,
                        create=scripts.command_line("fake-disks.sh", {"action": "create", **disk_args}, node.sudo),
                        delete=scripts.command_line("fake-disks.sh", {"action": "delete", **disk_args}, node.sudo),
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[node.installed]),
                    )
                )
            helm.release(
                f"{name}-local-static",
                ls.chart,
                name="local-static-provisioner",
                namespace="kube-system",
                values={
                    "classes": [
                        {
                            "name": ls.class_name,
                            "hostDir": ls.disk_dir,
                            "volumeMode": "Filesystem",
                            "fsType": "ext4",
                            "storageClass": {"reclaimPolicy": "Delete", "isDefaultClass": True},
                        }
                    ]
                },
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=disks),
            )
            default_class = ls.class_name

        rwx: str | None = None
        if cfg.nfs is not None:
            nfs = cfg.nfs
            helm.release(
                f"{name}-nfs",
                nfs.chart,
                name="nfs-provisioner",
                namespace="kube-system",
                values={
                    "nfs": {"server": nfs.server, "path": nfs.path},
                    "storageClass": {
                        "name": nfs.class_name,
                        "defaultClass": False,
                        "accessModes": "ReadWriteMany",
                        "reclaimPolicy": "Retain",
                        "archiveOnDelete": True,
                    },
                },
                opts=k8s_opts,
            )
            rwx = nfs.class_name

        self.default_class = pulumi.Output.from_input(default_class)
        self.rwx_class = pulumi.Output.from_input(rwx)
        self.register_outputs({"defaultClass": self.default_class, "rwxClass": self.rwx_class})
