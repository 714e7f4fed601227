"""open-hydra config (seed 004): pinned upstream manifests, host directories, MySQL."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from config.base import Admin, ManifestSource, Model, Secret, pinned
from config.fields import NodeName, NodePath, NodePort

# Seed 004 describes the v0.1 line (config keys jupyterLabHostBaseDir, vscodeBasePath;
# the UI of release-0.1). openhydra/open-hydra has tags v0.1 and v2.0; open-hydra-ui has no
# tags, so its manifest is pinned by commit.
OPEN_HYDRA = "https://raw.githubusercontent.com/openhydra/open-hydra/v0.1/deploy"
OPEN_HYDRA_UI = (
    "https://raw.githubusercontent.com/openhydra/open-hydra-ui/ce188641566d0761d5d666695036517d58ac5b59/deploy"
)
ResourceName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]([-a-z0-9._]*[a-z0-9])?$")]


class OpenhydraManifests(Model):
    local_path: ManifestSource = pinned(
        "https://raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.26/deploy/local-path-storage.yaml"
    )
    mysql_operator_crds: ManifestSource = pinned(
        "https://raw.githubusercontent.com/mysql/mysql-operator/8.0.36-2.1.2/deploy/deploy-crds.yaml"
    )
    mysql_operator: ManifestSource = pinned(
        "https://raw.githubusercontent.com/mysql/mysql-operator/8.0.36-2.1.2/deploy/deploy-operator.yaml"
    )
    open_hydra: ManifestSource = pinned(f"{OPEN_HYDRA}/install-open-hydra.yaml")
    reverse_proxy: ManifestSource = pinned(f"{OPEN_HYDRA}/reverse-proxy.yaml")
    ui: ManifestSource = pinned(f"{OPEN_HYDRA_UI}/deploy.yaml")


class OpenhydraServer(Model):
    gpu_driver: ResourceName | None = Field(
        default=None,
        description="defaultGpuDriver: the extended resource GPUs are requested as (default: cluster.gpu.resource).",
    )
    dataset_base_path: NodePath = "/mnt/public-dataset"
    course_base_path: NodePath = "/mnt/public-course"
    jupyter_lab_host_base_dir: NodePath = "/mnt/jupyter-lab"
    vscode_base_path: NodePath = "/mnt/public-vscode"
    disable_auth: bool = False


class GpuTimeSlicing(Model):
    enabled: bool = False
    replicas: int = Field(default=4, ge=2, le=64)


class Openhydra(Model):
    enabled: bool = True
    namespace: Literal["open-hydra"] = Field(
        default="open-hydra", description="Fixed: the upstream manifests put every object in open-hydra."
    )
    manifests: OpenhydraManifests = Field(default_factory=OpenhydraManifests)
    mysql_root_password: Secret | None = Field(default=None, description="MySQL root password; generated when absent.")
    mysql_root_host: Annotated[str, Field(pattern=r"^[0-9a-f.:%/]{1,64}$")] | None = Field(
        default=None,
        description="Where MySQL root may log in from (MySQL host syntax). Default: the cluster's pod network "
        "(cluster.k3s.clusterCidr as address/netmask), not '%' (anywhere).",
    )
    server: OpenhydraServer = Field(default_factory=OpenhydraServer)
    admin: Admin = Field(default_factory=Admin)
    ui_node_port: NodePort = 30001
    nodes: list[NodeName] = Field(
        default_factory=list,
        description="Nodes that get the host directories (default: all); the server runs on these nodes only "
        "(their taints tolerated).",
    )
    gpu_time_slicing: GpuTimeSlicing = Field(default_factory=GpuTimeSlicing)
