"""Cluster config: the nodes over SSH and K3s on them, or an existing cluster's kubeconfig."""

from __future__ import annotations

from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from config.base import ENCRYPTED_PLACEHOLDER, ChartSource, Model, Secret
from config.fields import (
    Cidr,
    Host,
    HostKey,
    HttpUrl,
    Iface,
    ImageRef,
    IpAddress,
    K3sFlag,
    K3sVersion,
    LabelKey,
    LabelValue,
    NodeName,
    Port,
    ProvisionerPath,
    Regex,
    RegistryKey,
    RewriteTarget,
    Taint,
    UserName,
    Word,
)

# K3s flags the program sets itself, and the config key that owns each: an `extraArgs`
# entry for one of them would be written after the program's keys and win.
OWNED_FLAGS: dict[str, str] = {
    "node-name": "cluster.{servers,agents}[].name",
    "server": "the program (the first server's address)",
    "token": "cluster.k3s.token",
    "token-file": "cluster.k3s.token",
    "agent-token": "cluster.k3s.token",
    "agent-token-file": "cluster.k3s.token",
    "write-kubeconfig": "the program (/etc/rancher/k3s/k3s.yaml, read back by the program)",
    "write-kubeconfig-mode": "the program (0600: the admin kubeconfig)",
    "write-kubeconfig-group": "the program (0600: the admin kubeconfig)",
    "write-kubeconfig-user": "the program (0600: the admin kubeconfig)",
    "tls-san": "cluster.k3s.tlsSan",
    "cluster-init": "the program (the first of several servers)",
    "node-ip": "cluster.{servers,agents}[].nodeIp",
    "flannel-iface": "cluster.{servers,agents}[].flannelIface",
    "node-taint": "cluster.{servers,agents}[].taints",
    "node-label": "cluster.{servers,agents}[].labels",
    "disable": "cluster.k3s.disable",
    "bind-address": "cluster.k3s.bindAddress",
    "cluster-cidr": "cluster.k3s.clusterCidr",
    "service-cidr": "cluster.k3s.serviceCidr",
    "docker": "cluster.k3s.docker",
    "data-dir": "the program (the node scripts use /var/lib/rancher/k3s)",
    "config": "the program (/etc/rancher/k3s/config.yaml)",
    "https-port": "the program (the API on 6443, in the kubeconfig)",
    "private-registry": "cluster.k3s.registries",
    "datastore-endpoint": "the program (embedded etcd)",
}
PACKAGED = Literal["coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"]


class Bastion(Model):
    host: Host = Field(description="Bastion (jump host) address.")
    port: Port = 22
    user: UserName = "root"
    private_key: Secret | None = Field(default=None, description="Private key for the bastion (secret).")
    password: Secret | None = Field(default=None, description="Password for the bastion (secret).")
    host_key: HostKey | None = Field(
        default=None, description="Pinned public host key of the bastion (required unless allowUnpinnedHostKeys)."
    )


class SshDefaults(Model):
    """How the provisioner reaches the nodes; each node may override user and port."""

    user: UserName = Field(default="root", description="SSH user. A non-root user needs passwordless sudo.")
    port: Port = 22
    private_key: Secret | None = Field(default=None, description="Private key (PEM/OpenSSH text, secret).")
    private_key_path: ProvisionerPath | None = Field(
        default=None, description="Path of the private key on the provisioner (read at run time, kept secret)."
    )
    password: Secret | None = Field(default=None, description="SSH password (secret).")
    bastion: Bastion | None = Field(default=None, description="Optional jump host.")
    allow_unpinned_host_keys: bool = Field(
        default=False,
        description="Accept nodes and the bastion without `hostKey` (no host key verification). Off by default.",
    )
    dial_error_limit: int = Field(default=10, ge=1, le=100, description="SSH dial attempts before failing.")
    per_dial_timeout: int = Field(default=15, ge=1, le=600, description="Seconds per SSH dial attempt.")

    @model_validator(mode="after")
    def _one_credential(self) -> SshDefaults:
        if self.private_key is not None and self.private_key_path is not None:
            raise ValueError("give either privateKey or privateKeyPath, not both")
        return self


class Node(Model):
    name: NodeName = Field(description="Kubernetes node name (unique).")
    host: Host = Field(description="Address the provisioner reaches the node at over SSH.")
    port: Port | None = Field(default=None, description="SSH port (default: cluster.ssh.port).")
    user: UserName | None = Field(default=None, description="SSH user (default: cluster.ssh.user).")
    host_key: HostKey | None = Field(default=None, description="Pinned SSH host key ('ssh-ed25519 AAAA...').")
    node_ip: IpAddress | None = Field(default=None, description="K3s --node-ip (the address other nodes use).")
    flannel_iface: Iface | None = Field(default=None, description="K3s --flannel-iface (the node's private NIC).")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Node labels.")
    taints: list[Taint] = Field(default_factory=list, description="Node taints, key[=value]:Effect.")
    gpu: bool = Field(
        default=False,
        description="NVIDIA GPU node: the driver and container toolkit are installed (or checked: cluster.gpu.driver) "
        "before K3s, which then registers the `nvidia` runtime.",
    )
    gpu_model: LabelValue | None = Field(
        default=None,
        description="The GPU product (e.g. Tesla-V100-SXM2-16GB): the node's `nvidia.com/gpu.product` label, which "
        "CSGHub's runner reads to tell GPU models apart.",
    )
    extra_args: list[K3sFlag] = Field(
        default_factory=list, description="Extra K3s flags (`--flag=value`); flags the program owns are refused."
    )

    @field_validator("extra_args")
    @classmethod
    def _flags(cls, args: list[str]) -> list[str]:
        for arg in args:
            flag = arg[2:].partition("=")[0]
            if flag in OWNED_FLAGS:
                raise ValueError(f"extraArgs entry {arg!r}: --{flag} is set by {OWNED_FLAGS[flag]}; configure it there")
        return args


class RegistryMirror(Model):
    endpoints: list[HttpUrl] = Field(min_length=1, description="Mirror endpoints (URLs), tried in order.")
    rewrite: dict[Regex, RewriteTarget] = Field(
        default_factory=dict, description="Repository rewrite rules (RE2 regex → replacement)."
    )


class RegistryAuth(Model):
    username: Word
    password: Secret = Field(description="Registry password (secret).")


class RegistryTls(Model):
    insecure_skip_verify: bool = False
    ca_file: ProvisionerPath | None = Field(
        default=None, description="CA certificate (PEM) on the provisioner: copied to every node and trusted for it."
    )


class RegistryConfig(Model):
    auth: RegistryAuth | None = None
    tls: RegistryTls | None = None


class Registries(Model):
    """K3s `registries.yaml`, written on every node."""

    mirrors: dict[RegistryKey, RegistryMirror] = Field(default_factory=dict)
    configs: dict[RegistryKey, RegistryConfig] = Field(default_factory=dict)


class Airgap(Model):
    """The K3s airgap bundle on the provisioner, uploaded to every node: one directory (`dir`,
    one SFTP session per node) or three files (`binary`, `images`, `installScript`: three)."""

    dir: ProvisionerPath | None = Field(
        default=None,
        description="A directory holding exactly the bundle as K3s publishes it: `k3s`, `install.sh` and one "
        "`k3s-airgap-images-<arch>.tar[.zst|.gz]`, uploaded whole in one SFTP session per node. Instead of "
        "`binary`, `images` and `installScript`.",
    )
    binary: ProvisionerPath | None = Field(default=None, description="Path of the `k3s` binary on the provisioner.")
    images: ProvisionerPath | None = Field(
        default=None, description="Path of the images tarball (`k3s-airgap-images-<arch>.tar[.zst|.gz]`)."
    )
    install_script: ProvisionerPath | None = Field(
        default=None, description="Path of the K3s `install.sh` on the provisioner."
    )

    @model_validator(mode="after")
    def _one_form(self) -> Airgap:
        files = {"binary": self.binary, "images": self.images, "installScript": self.install_script}
        given = [k for k, v in files.items() if v is not None]
        if self.dir is not None and given:
            both = ", ".join(f"`{k}`" for k in given)
            raise ValueError(f"give `dir` or the three files, not both (`dir` and {both})")
        if self.dir is None and len(given) < 3:
            missing = ", ".join(f"`{k}`" for k in files if k not in given)
            raise ValueError(f"the bundle needs `dir`, or `binary`, `images` and `installScript` ({missing} missing)")
        return self


def _traefik() -> list[PACKAGED]:
    return ["traefik"]


class K3s(Model):
    version: K3sVersion = Field(default="v1.30.4+k3s1", description="Pinned K3s version (vX.Y.Z+k3sN).")
    install: Literal["online", "airgap"] = Field(default="online", description="How K3s reaches the nodes.")
    mirror: Literal["default", "cn"] = Field(default="default", description="`cn`: INSTALL_K3S_MIRROR=cn (online).")
    installer_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Online install: the sha256 the downloaded install.sh must have (it is refused otherwise).",
    )
    airgap: Airgap | None = Field(default=None, description="Bundle files, required when install is airgap.")
    token: Secret | None = Field(default=None, description="Cluster token (secret); generated when absent.")
    disable: list[PACKAGED] = Field(default_factory=_traefik, description="Packaged components to disable.")
    tls_san: list[Host] = Field(default_factory=list, description="Extra SANs on the API server certificate.")
    bind_address: IpAddress | None = Field(default=None, description="K3s --bind-address on servers.")
    cluster_cidr: Cidr = "10.42.0.0/16"
    service_cidr: Cidr = "10.43.0.0/16"
    api_endpoint: Host | None = Field(
        default=None,
        description="Address written into the kubeconfig (default: the first server's host). Something must "
        "serve the API there: a load balancer or VIP in front of the servers' 6443.",
    )
    registries: Registries = Field(default_factory=Registries)
    docker: bool = Field(default=False, description="Use Docker (cri-dockerd) instead of containerd.")
    ready_timeout_seconds: int = Field(
        default=600, ge=10, le=7200, description="How long to wait for readiness per node."
    )
    rollout_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Agents restarted at once when registries.yaml changes (default: one per 50 agents; "
        "servers always one at a time).",
    )

    @model_validator(mode="after")
    def _rules(self) -> K3s:
        if self.install == "airgap" and self.airgap is None:
            raise ValueError("install is 'airgap' but `airgap` (dir, or binary, images and installScript) is missing")
        if self.install == "airgap" and self.mirror == "cn":
            raise ValueError("mirror 'cn' only applies to online installs; airgap downloads nothing")
        if self.install == "airgap" and self.installer_sha256 is not None:
            raise ValueError("installerSha256 applies to online installs; airgap uses airgap.installScript")
        return self


def kubeconfig_problem(text: str) -> str | None:
    """Why TEXT is not a usable kubeconfig, or None."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return f"is not YAML ({str(exc).splitlines()[0]})"
    if not isinstance(doc, dict) or doc.get("kind") != "Config":
        return "is not a kubeconfig (a YAML mapping with `kind: Config`)"
    clusters = doc.get("clusters") or []
    if not isinstance(clusters, list) or not clusters:
        return "has no clusters"
    contexts = {c.get("name") for c in doc.get("contexts") or [] if isinstance(c, dict)}
    current = doc.get("current-context")
    if len(clusters) > 1 and current not in contexts:
        return "has several clusters and no valid current-context"
    for c in clusters:
        server = ((c or {}).get("cluster") or {}).get("server") if isinstance(c, dict) else None
        if not isinstance(server, str) or not server.startswith("https://"):
            return "has a cluster without an https:// server"
        if "@" in server.split("//", 1)[1].split("/", 1)[0]:
            return "has credentials in a server URL: give them in the user entry instead"
    return None


def _kubeconfig(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    problem = None if text == ENCRYPTED_PLACEHOLDER else kubeconfig_problem(text)
    if problem:
        raise ValueError(f"the kubeconfig {problem}")
    return value


class GpuAirgap(Model):
    """The NVIDIA driver and container toolkit as .deb files on the provisioner (airgap)."""

    packages: list[ProvisionerPath] = Field(
        min_length=1, description="The .deb files (driver, nvidia-container-toolkit and their dependencies)."
    )


class DevicePlugin(Model):
    image: ImageRef = Field(
        default="nvcr.io/nvidia/k8s-device-plugin:v0.17.1",
        description="The NVIDIA device plugin image (pinned; mirror it for airgap).",
    )


class GpuOperatorChart(Model):
    chart: ChartSource = Field(
        default_factory=lambda: ChartSource(
            repository="https://helm.ngc.nvidia.com/nvidia", name="gpu-operator", version="v24.9.2"
        )
    )


class Gpu(Model):
    """GPU nodes end to end: the node layer (driver, container toolkit) and the cluster layer
    (something that advertises the GPUs: the device plugin or the GPU operator)."""

    driver: Literal["install", "preinstalled"] = Field(
        default="install",
        description="install (seed 003's default): the NVIDIA driver and nvidia-container-toolkit are installed on "
        "each GPU node (Debian/Ubuntu: apt; airgap: gpu.airgap.packages). preinstalled: they are checked for.",
    )
    driver_branch: Annotated[str, Field(pattern=r"^[0-9]{3}$")] = Field(
        default="535", description="NVIDIA driver branch (seed 004's CUDA images: 525 or 535)."
    )
    airgap: GpuAirgap | None = Field(default=None, description="Packages uploaded from the provisioner (airgap).")
    plugin: Literal["device-plugin", "gpu-operator", "none"] = Field(
        default="device-plugin",
        description="What advertises `nvidia.com/gpu`: NVIDIA's device plugin DaemonSet, the GPU operator (its "
        "driver and toolkit off: the node layer has them), or none (GPU workloads then stay Pending).",
    )
    device_plugin: DevicePlugin = Field(default_factory=DevicePlugin)
    operator: GpuOperatorChart = Field(default_factory=GpuOperatorChart)
    resource: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]([-a-z0-9._]*[a-z0-9])?$")] = (
        Field(
            default="nvidia.com/gpu",
            description="The extended resource GPUs are requested as: CSGHub's runner capacity label and open-hydra's "
            "defaultGpuDriver come from it.",
        )
    )


class Cluster(Model):
    """The K3s cluster: provisioned over SSH (servers/agents), or an existing one (kubeconfig)."""

    kubeconfig: Annotated[Secret, AfterValidator(_kubeconfig)] | None = Field(
        default=None, description="Existing-cluster mode: a kubeconfig (secret); no nodes are provisioned."
    )
    ssh: SshDefaults = Field(default_factory=SshDefaults)
    k3s: K3s = Field(default_factory=K3s)
    servers: list[Node] = Field(default_factory=list, description="Server nodes; the first initialises the cluster.")
    agents: list[Node] = Field(default_factory=list, description="Agent nodes; they join in parallel.")
    gpu: Gpu = Field(default_factory=Gpu, description="GPU nodes: driver, container toolkit, device plugin.")

    def nodes(self) -> list[tuple[str, Node]]:
        """Every node with its key path."""
        return [(f"cluster.servers[{i}]", n) for i, n in enumerate(self.servers)] + [
            (f"cluster.agents[{i}]", n) for i, n in enumerate(self.agents)
        ]
