"""The typed stack configuration: one pydantic model per layer, one root model.

The root model mirrors `Pulumi.<stack>.yaml`: each top-level field is one config key
in the `ai-platform:` namespace (`ai-platform:cluster`, `ai-platform:csghub`, ...).
Field names are snake_case in Python and camelCase in the stack file (the Pulumi
convention); error messages and the generated schema use the camelCase names.

Every model forbids unknown keys, so a typo is an error rather than a silent default.
Secrets are `SecretStr`: they print as `**********` and are wrapped as Pulumi secrets
wherever they reach a resource.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

# ---------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------


def to_camel(name: str) -> str:
    """snake_case → camelCase at underscores only (so `k3s` stays `k3s`)."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


# ---------------------------------------------------------------------------
# Validators
# ---------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_K3S_VERSION = re.compile(r"^v\d+\.\d+\.\d+\+k3s\d+$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_TAINT = re.compile(r"^[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$")
_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _dns_name(value: str) -> str:
    if _is_ip(value):
        raise ValueError(f"{value!r} is an IP address; a DNS name is expected (e.g. example.com)")
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_DNS_LABEL.match(lbl) for lbl in labels):
        raise ValueError(f"{value!r} is not a DNS name (lower-case labels separated by dots, e.g. example.com)")
    return value


def _host(value: str) -> str:
    if _is_ip(value):
        return value
    if all(_DNS_LABEL.match(lbl) for lbl in value.lower().split(".")) and len(value) <= 253:
        return value
    raise ValueError(f"{value!r} is neither an IP address nor a host name")


def _ip(value: str) -> str:
    if not _is_ip(value):
        raise ValueError(f"{value!r} is not an IP address")
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR network ({exc})") from None
    return value


def _node_name(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a valid node name (lower-case letters, digits and '-', at most 63)")
    return value


def _quantity(value: str) -> str:
    if not _QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a storage quantity (e.g. 10Gi)")
    return value


def _taint(value: str) -> str:
    if not _TAINT.match(value):
        raise ValueError(f"{value!r} is not a taint (key[=value]:NoSchedule|PreferNoSchedule|NoExecute)")
    return value


def _semver(value: str) -> str:
    if not _SEMVER.match(value):
        raise ValueError(f"{value!r} is not a pinned version (e.g. 1.17.0); ranges and 'latest' are refused")
    return value


def _host_key(value: str) -> str:
    parts = value.split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
        raise ValueError("a host key is one public key line: '<type> <base64>' (e.g. 'ssh-ed25519 AAAA...')")
    return f"{parts[0]} {parts[1]}"


DnsName = Annotated[str, AfterValidator(_dns_name)]
Host = Annotated[str, AfterValidator(_host)]
IpAddress = Annotated[str, AfterValidator(_ip)]
Cidr = Annotated[str, AfterValidator(_cidr)]
NodeName = Annotated[str, AfterValidator(_node_name)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Taint = Annotated[str, AfterValidator(_taint)]
PinnedVersion = Annotated[str, AfterValidator(_semver)]
HostKey = Annotated[str, AfterValidator(_host_key)]
Port = Annotated[int, Field(ge=1, le=65535)]
NodePort = Annotated[int, Field(ge=30000, le=32767)]


class Model(BaseModel):
    """Base of every config model: camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )


class ChartSource(Model):
    """Where a Helm chart comes from: a repository and a pinned version, or a local chart."""

    repository: str = Field(description="Helm repository URL.")
    name: str = Field(description="Chart name in the repository.")
    version: PinnedVersion = Field(description="Pinned chart version (no ranges).")
    local_path: str | None = Field(
        default=None,
        description="A local chart `.tgz` or directory on the provisioner (airgap); wins over the repository.",
    )


class ManifestSource(Model):
    """A pinned upstream manifest: its URL, or a local copy for airgap."""

    url: str = Field(description="Upstream URL of the manifest, pinned to a release.")
    local_path: str | None = Field(default=None, description="Local copy on the provisioner (airgap); wins over `url`.")


def pinned(url: str) -> Any:
    """A ManifestSource field defaulting to the pinned upstream URL."""
    return Field(default_factory=lambda: ManifestSource(url=url))


# ---------------------------------------------------------------------------
# Cluster: nodes and K3s
# ---------------------------------------------------------------------------


class Bastion(Model):
    host: Host = Field(description="Bastion (jump host) address.")
    port: Port = 22
    user: str = "root"
    private_key: SecretStr | None = Field(default=None, description="Private key for the bastion (secret).")
    password: SecretStr | None = Field(default=None, description="Password for the bastion (secret).")
    host_key: HostKey | None = Field(default=None, description="Pinned public host key of the bastion.")


class SshDefaults(Model):
    """How the provisioner reaches the nodes; each node may override user and port."""

    user: str = Field(default="root", description="SSH user. A non-root user needs passwordless sudo.")
    port: Port = 22
    private_key: SecretStr | None = Field(default=None, description="Private key (PEM/OpenSSH text, secret).")
    private_key_path: str | None = Field(
        default=None, description="Path of the private key on the provisioner (read at run time, kept secret)."
    )
    password: SecretStr | None = Field(default=None, description="SSH password (secret).")
    bastion: Bastion | None = Field(default=None, description="Optional jump host.")
    allow_unpinned_host_keys: bool = Field(
        default=False,
        description="Accept nodes without `hostKey` (no host key verification). Off by default.",
    )
    dial_error_limit: int = Field(default=10, ge=1, description="SSH dial attempts before failing.")
    per_dial_timeout: int = Field(default=15, ge=1, description="Seconds per SSH dial attempt.")

    @model_validator(mode="after")
    def _one_credential(self) -> SshDefaults:
        if self.private_key is not None and self.private_key_path is not None:
            raise ValueError("give either privateKey or privateKeyPath, not both")
        return self


class Node(Model):
    name: NodeName = Field(description="Kubernetes node name (unique).")
    host: Host = Field(description="Address the provisioner reaches the node at over SSH.")
    port: Port | None = Field(default=None, description="SSH port (default: cluster.ssh.port).")
    user: str | None = Field(default=None, description="SSH user (default: cluster.ssh.user).")
    host_key: HostKey | None = Field(default=None, description="Pinned SSH host key ('ssh-ed25519 AAAA...').")
    node_ip: IpAddress | None = Field(default=None, description="K3s --node-ip (the address other nodes use).")
    flannel_iface: str | None = Field(default=None, description="K3s --flannel-iface (the node's private NIC).")
    labels: dict[str, str] = Field(default_factory=dict, description="Node labels.")
    taints: list[Taint] = Field(default_factory=list, description="Node taints, key[=value]:Effect.")
    gpu: bool = Field(default=False, description="NVIDIA GPU node: the nvidia runtime is required and used.")
    extra_args: list[str] = Field(default_factory=list, description="Extra K3s flags (`--flag=value`).")

    @model_validator(mode="after")
    def _flags(self) -> Node:
        for arg in self.extra_args:
            if not arg.startswith("--") or any(c in arg for c in "\n'\"`$;&|"):
                raise ValueError(
                    f"extraArgs entry {arg!r} must be one '--flag[=value]' without quotes or shell characters"
                )
        return self


class RegistryMirror(Model):
    endpoints: list[str] = Field(min_length=1, description="Mirror endpoints (URLs), tried in order.")
    rewrite: dict[str, str] = Field(default_factory=dict, description="Repository rewrite rules (regex → replacement).")


class RegistryAuth(Model):
    username: str
    password: SecretStr = Field(description="Registry password (secret).")


class RegistryTls(Model):
    insecure_skip_verify: bool = False
    ca_file: str | None = Field(default=None, description="CA file path on the nodes.")


class RegistryConfig(Model):
    auth: RegistryAuth | None = None
    tls: RegistryTls | None = None


class Registries(Model):
    """K3s `registries.yaml`, written on every node."""

    mirrors: dict[str, RegistryMirror] = Field(default_factory=dict)
    configs: dict[str, RegistryConfig] = Field(default_factory=dict)


class Airgap(Model):
    """The K3s airgap bundle on the provisioner: uploaded to every node."""

    binary: str = Field(description="Path of the `k3s` binary on the provisioner.")
    images: str = Field(description="Path of the images tarball (`k3s-airgap-images-<arch>.tar[.zst|.gz]`).")
    install_script: str = Field(description="Path of the K3s `install.sh` on the provisioner.")


class K3s(Model):
    version: Annotated[str, Field(pattern=_K3S_VERSION.pattern)] = Field(
        default="v1.30.4+k3s1", description="Pinned K3s version (vX.Y.Z+k3sN)."
    )
    install: Literal["online", "airgap"] = Field(default="online", description="How K3s reaches the nodes.")
    mirror: Literal["default", "cn"] = Field(default="default", description="`cn`: INSTALL_K3S_MIRROR=cn (online).")
    airgap: Airgap | None = Field(default=None, description="Bundle files, required when install is airgap.")
    token: SecretStr | None = Field(default=None, description="Cluster token (secret); generated when absent.")
    disable: list[str] = Field(default_factory=lambda: ["traefik"], description="Packaged components to disable.")
    tls_san: list[str] = Field(default_factory=list, description="Extra SANs on the API server certificate.")
    bind_address: IpAddress | None = Field(default=None, description="K3s --bind-address on servers.")
    cluster_cidr: Cidr = "10.42.0.0/16"
    service_cidr: Cidr = "10.43.0.0/16"
    api_endpoint: Host | None = Field(
        default=None, description="Address written into the kubeconfig (default: the first server's host)."
    )
    registries: Registries = Field(default_factory=Registries)
    docker: bool = Field(default=False, description="Use Docker (cri-dockerd) instead of containerd.")
    ready_timeout_seconds: int = Field(default=600, ge=10, description="How long to wait for readiness per node.")

    @model_validator(mode="after")
    def _airgap(self) -> K3s:
        if self.install == "airgap" and self.airgap is None:
            raise ValueError("install is 'airgap' but `airgap` (binary, images, installScript) is missing")
        if self.install == "airgap" and self.mirror == "cn":
            raise ValueError("mirror 'cn' only applies to online installs; airgap downloads nothing")
        return self


class Cluster(Model):
    """The K3s cluster: provisioned over SSH (servers/agents), or an existing one (kubeconfig)."""

    kubeconfig: SecretStr | None = Field(
        default=None, description="Existing-cluster mode: a kubeconfig (secret); no nodes are provisioned."
    )
    ssh: SshDefaults = Field(default_factory=SshDefaults)
    k3s: K3s = Field(default_factory=K3s)
    servers: list[Node] = Field(default_factory=list, description="Server nodes; the first initialises the cluster.")
    agents: list[Node] = Field(default_factory=list, description="Agent nodes; they join in parallel.")


# ---------------------------------------------------------------------------
# Platform layers
# ---------------------------------------------------------------------------


class LocalStatic(Model):
    """Seed 000's test mode: fake disks bind-mounted on each node, served by local-static-provisioner."""

    disks_per_node: int = Field(default=5, ge=1, le=50)
    disk_dir: str = Field(default="/mnt/fake-disks", description="Where the bind-mounted disks appear.")
    backing_dir: str = Field(default="/var/lib/ai-platform/disks", description="Backing directories on the node.")
    class_name: str = "local-disks"
    chart: ChartSource = Field(
        default_factory=lambda: ChartSource(
            repository="https://kubernetes-sigs.github.io/sig-storage-local-static-provisioner",
            name="local-static-provisioner",
            version="2.0.0",
        )
    )


class Nfs(Model):
    server: Host = Field(description="NFS server address.")
    path: str = Field(description="Exported path.")
    class_name: str = "nfs-rwx"
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
    nfs: Nfs | None = Field(default=None, description="An NFS-backed ReadWriteMany StorageClass.")


class Kourier(Model):
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP",
        description="Kourier service type. LoadBalancer competes with the gateway for 80/443 on K3s ServiceLB.",
    )
    http_node_port: NodePort | None = Field(default=None, description="HTTP NodePort when serviceType is NodePort.")

    @model_validator(mode="after")
    def _node_port(self) -> Kourier:
        if self.service_type == "NodePort" and self.http_node_port is None:
            raise ValueError("serviceType NodePort needs httpNodePort (30000-32767)")
        if self.service_type != "NodePort" and self.http_node_port is not None:
            raise ValueError("httpNodePort is only used with serviceType NodePort")
        return self


class KnativeManifests(Model):
    """Pinned upstream manifests for the standalone install (CSGHub layer off)."""

    crds: ManifestSource = pinned(
        "https://github.com/knative/serving/releases/download/knative-v1.21.0/serving-crds.yaml"
    )
    core: ManifestSource = pinned(
        "https://github.com/knative/serving/releases/download/knative-v1.21.0/serving-core.yaml"
    )
    kourier: ManifestSource = pinned(
        "https://github.com/knative/net-kourier/releases/download/knative-v1.21.0/kourier.yaml"
    )


class Knative(Model):
    enabled: bool = True
    domain: DnsName = Field(default="app.internal", description="Internal domain of Knative services.")
    scale_to_zero: bool = Field(default=False, description="Knative scale-to-zero (seed: off).")
    scale_to_zero_grace_period: Annotated[str, Field(pattern=r"^\d+[smh]$")] = "60m"
    kourier: Kourier = Field(default_factory=Kourier)
    manifests: KnativeManifests = Field(default_factory=KnativeManifests)


class GatewayNodePorts(Model):
    http: NodePort = 30080
    https: NodePort = 30443
    gitssh: NodePort = 30022


class Tls(Model):
    certificate: str = Field(description="PEM certificate chain (public).")
    key: SecretStr = Field(description="PEM private key (secret).")
    secret_name: str = "csghub-tls"


class Gateway(Model):
    """The CSGHub chart's Envoy Gateway: the one owner of external traffic."""

    enabled: bool = True
    service_type: Literal["LoadBalancer", "NodePort"] = "NodePort"
    node_ports: GatewayNodePorts = Field(default_factory=GatewayNodePorts)
    tls: Tls | None = Field(default=None, description="TLS certificate for the gateway; plain HTTP when absent.")
    address: Host | None = Field(
        default=None, description="External address (LB IP or a node address; default: the first server's host)."
    )


class ExternalPostgres(Model):
    host: Host
    port: Port = 5432
    user: str
    password: SecretStr
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    timezone: str = "Etc/UTC"


class ExternalRedis(Model):
    host: Host
    port: Port = 6379
    password: SecretStr | None = None


class ExternalMongo(Model):
    host: Host
    port: Port = 27017
    user: str
    password: SecretStr


class ExternalObjectStore(Model):
    endpoint: str
    access_key: SecretStr
    secret_key: SecretStr
    region: str = "cn-north-1"
    secure: bool = True
    path_style: bool = True


class ExternalRegistry(Model):
    registry: str
    repository: str = "csghub"
    username: str
    password: SecretStr
    insecure: bool = False


class ExternalGitaly(Model):
    scheme: Literal["tcp", "tls", "unix"] = "tcp"
    host: Host
    port: Port = 8075
    token: SecretStr
    storage: str = "default"


class CsghubServices(Model):
    """Built-in (absent) or external services of the CSGHub release."""

    postgresql: ExternalPostgres | None = None
    redis: ExternalRedis | None = None
    mongo: ExternalMongo | None = None
    object_store: ExternalObjectStore | None = None
    registry: ExternalRegistry | None = None
    gitaly: ExternalGitaly | None = None


class Persistence(Model):
    """Volume sizes (seed 000 defaults). On chart 1.17 the registry stores its images in
    MinIO, and builder and gitlab-shell have no volumes: size MinIO for the registry too."""

    storage_class: str | None = Field(default=None, description="StorageClass (default: the cluster default).")
    postgresql: Quantity = "50Gi"
    redis: Quantity = "10Gi"
    minio: Quantity = "200Gi"
    gitaly: Quantity = "200Gi"
    nats: Quantity = "10Gi"


class Image(Model):
    registry: str | None = Field(
        default=None, description="Image registry mirror (e.g. opencsg-registry.cn-beijing.cr.aliyuncs.com)."
    )
    tag: str | None = Field(default=None, description="Image tag override (default: the chart's).")


class Admin(Model):
    username: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{2,31}$")] = "admin"
    password: SecretStr | None = Field(default=None, description="Admin password (secret); generated when absent.")


class Csghub(Model):
    enabled: bool = True
    namespace: str = "csghub"
    chart: ChartSource = Field(
        default_factory=lambda: ChartSource(
            repository="https://charts.opencsg.com/csghub", name="csghub", version="1.17.0"
        )
    )
    domain: DnsName = Field(default="example.com", description="Base domain: csghub.<domain>, casdoor.<domain>, ...")
    public_domain: DnsName | None = Field(default=None, description="global.gateway.external.public override.")
    edition: Literal["ce", "ee"] = "ce"
    image: Image = Field(default_factory=Image)
    persistence: Persistence = Field(default_factory=Persistence)
    gpu: bool = Field(default=False, description="Schedule GPU workloads (needs a node with gpu: true).")
    services: CsghubServices = Field(default_factory=CsghubServices)
    admin: Admin = Field(default_factory=Admin)
    coredns_hosts: bool = Field(
        default=True, description="Resolve the CSGHub hostnames in CoreDNS (no DNS for the domain)."
    )
    node_registry: bool = Field(default=True, description="Add the CSGHub registry to every node's registries.yaml.")
    values: dict[str, Any] = Field(default_factory=dict, description="Pass-through chart values, merged last.")


class DataflowPostgres(Model):
    mode: Literal["embedded", "external"] = "embedded"
    external: ExternalPostgres | None = None


class DataflowRedis(Model):
    mode: Literal["embedded", "external"] = "embedded"
    external: ExternalRedis | None = None


class DataflowMongo(Model):
    mode: Literal["embedded", "external"] = "embedded"
    external: ExternalMongo | None = None


class DataflowDatabases(Model):
    postgresql: DataflowPostgres = Field(default_factory=DataflowPostgres)
    redis: DataflowRedis = Field(default_factory=DataflowRedis)
    mongo: DataflowMongo = Field(default_factory=DataflowMongo)
    dataflow_database: str = "csghub_dataflow"
    label_studio_database: str = "csghub_label_studio"

    @model_validator(mode="after")
    def _external(self) -> DataflowDatabases:
        for name in ("postgresql", "redis", "mongo"):
            db = getattr(self, name)
            if db.mode == "external" and db.external is None:
                raise ValueError(f"{name}.mode is 'external' but {name}.external (host, port, ...) is missing")
            if db.mode == "embedded" and db.external is not None:
                raise ValueError(f"{name}.external is set but {name}.mode is 'embedded'")
        return self


AccessMode = Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"]


def _rwx() -> list[AccessMode]:
    return ["ReadWriteMany"]


class DataflowPersistence(Model):
    storage_class: str | None = Field(default=None, description="ReadWriteMany class (production: storage.nfs).")
    access_modes: list[AccessMode] = Field(default_factory=_rwx)
    size: Quantity = "100Gi"


class Dataflow(Model):
    enabled: bool = True
    standalone: bool = Field(
        default=False,
        description="Own release (CSGHub off or in another cluster). Beside CSGHub it is the bundled subchart.",
    )
    namespace: str = "dataflow"
    chart: ChartSource = Field(
        default_factory=lambda: ChartSource(
            repository="https://charts.opencsg.com/csghub", name="dataflow", version="1.17.0"
        )
    )
    edition: Literal["ce", "ee"] = "ce"
    domain: DnsName | None = Field(default=None, description="Gateway domain (standalone; default csghub.domain).")
    tls_secret_name: str | None = Field(default=None, description="TLS secret for the gateway (standalone).")
    external_url: str | None = Field(default=None, description="CSGHub URL (default: the CSGHub layer's portal URL).")
    image: Image = Field(default_factory=Image)
    databases: DataflowDatabases = Field(default_factory=DataflowDatabases)
    persistence: DataflowPersistence = Field(default_factory=DataflowPersistence)
    values: dict[str, Any] = Field(default_factory=dict)


class PvSize(Model):
    size: Quantity
    source: dict[str, Any] = Field(
        description="Any PersistentVolumeSource: {hostPath: {path: /data/minio}}, {nfs: {server, path}}, ...",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PvSize:
        if len(self.source) != 1:
            raise ValueError("source must name exactly one PersistentVolumeSource kind (hostPath, nfs, ...)")
        return self


class OctopusVolumes(Model):
    minio: PvSize
    mysql: PvSize
    redis: PvSize
    logger: PvSize
    logstash: PvSize


class OctopusCredentials(Model):
    """Every default credential of the Octopus chart; each generated when absent."""

    taskset_admin_token: SecretStr | None = None
    minio_access_key: SecretStr | None = None
    minio_secret_key: SecretStr | None = None
    mysql_root_password: SecretStr | None = None
    redis_password: SecretStr | None = None
    harbor_user: str = "admin"
    harbor_password: SecretStr | None = None
    admin_user: str = "admin"
    admin_password: SecretStr | None = None
    grafana_password: SecretStr | None = None


class HarborRepo(Model):
    url: str = Field(description="Harbor chart repository, https://<harbor>/chartrepo/<project>.")
    chart: str = "octopus"
    version: PinnedVersion = "0.1.0"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    local_path: str | None = Field(default=None, description="Local chart for airgap.")


class OctopusNodePorts(Model):
    sftpgo: NodePort = 30122
    minio: NodePort = 31311
    mysql: NodePort = 30336


class Octopus(Model):
    enabled: bool = True
    namespace: str = "octopus"
    repo: HarborRepo
    node_selector_key: str = "octopus.openi.pcl.cn/node"
    node_selector_value: str = "server"
    nodes: list[NodeName] = Field(default_factory=list, description="Nodes that carry Octopus (get the label).")
    image_registry: str | None = Field(default=None, description="global image repository address.")
    image_pathname: str | None = Field(default=None, description="global image repository pathname.")
    bitnami_repository: str = Field(default="bitnamilegacy", description="Where the moved Bitnami images live.")
    ingress_paths: dict[
        Literal[
            "adminserver", "openaiserver", "adminportal", "openaiportal", "logger", "minioWeb", "minioApi", "grafana"
        ],
        Annotated[str, Field(pattern=r"^/")],
    ] = Field(default_factory=dict, description="Ingress paths per service (absolute paths).")
    volumes: OctopusVolumes
    credentials: OctopusCredentials = Field(default_factory=OctopusCredentials)
    node_ports: OctopusNodePorts = Field(default_factory=OctopusNodePorts)
    values: dict[str, Any] = Field(default_factory=dict)


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
    open_hydra: ManifestSource = pinned(
        "https://raw.githubusercontent.com/openhydra/open-hydra/v0.1.0/deploy/install-open-hydra.yaml"
    )
    reverse_proxy: ManifestSource = pinned(
        "https://raw.githubusercontent.com/openhydra/open-hydra/v0.1.0/deploy/reverse-proxy.yaml"
    )
    ui: ManifestSource = pinned("https://raw.githubusercontent.com/openhydra/open-hydra-ui/v0.1.0/deploy/deploy.yaml")


class OpenhydraServer(Model):
    gpu_driver: str = Field(default="nvidia.com/gpu", description="defaultGpuDriver.")
    dataset_base_path: str = "/mnt/public-dataset"
    course_base_path: str = "/mnt/public-course"
    jupyter_lab_host_base_dir: str = "/mnt/jupyter-lab"
    vscode_base_path: str = "/mnt/public-vscode"
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
    mysql_root_password: SecretStr | None = Field(
        default=None, description="MySQL root password; generated when absent."
    )
    server: OpenhydraServer = Field(default_factory=OpenhydraServer)
    admin: Admin = Field(default_factory=Admin)
    ui_node_port: NodePort = 30001
    nodes: list[NodeName] = Field(
        default_factory=list, description="Nodes that get the host directories (default: all)."
    )
    gpu_time_slicing: GpuTimeSlicing = Field(default_factory=GpuTimeSlicing)


# ---------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------


def _cluster_nodes(cluster: Cluster) -> list[tuple[str, Node]]:
    return [(f"cluster.servers[{i}]", n) for i, n in enumerate(cluster.servers)] + [
        (f"cluster.agents[{i}]", n) for i, n in enumerate(cluster.agents)
    ]


class StackConfig(Model):
    """The whole `ai-platform:` config namespace of one stack."""

    cluster: Cluster
    storage: Storage = Field(default_factory=Storage)
    knative: Knative = Field(default_factory=Knative)
    gateway: Gateway = Field(default_factory=Gateway)
    csghub: Csghub = Field(default_factory=Csghub)
    dataflow: Dataflow = Field(default_factory=lambda: Dataflow(enabled=False))
    octopus: Octopus | None = Field(default=None, description="Octopus (absent: off).")
    openhydra: Openhydra = Field(default_factory=lambda: Openhydra(enabled=False))

    def nodes(self) -> list[Node]:
        return [n for _, n in _cluster_nodes(self.cluster)]

    def node_ports(self) -> list[tuple[str, int]]:
        """Every NodePort any enabled layer asks for, with the config key that asks."""
        ports: list[tuple[str, int]] = []
        if self.csghub.enabled and self.gateway.enabled and self.gateway.service_type == "NodePort":
            for key, port in self.gateway.node_ports.model_dump().items():
                ports.append((f"gateway.nodePorts.{key}", port))
        if self.knative.enabled and self.knative.kourier.http_node_port is not None:
            ports.append(("knative.kourier.httpNodePort", self.knative.kourier.http_node_port))
        if self.octopus is not None and self.octopus.enabled:
            for key, port in self.octopus.node_ports.model_dump().items():
                ports.append((f"octopus.nodePorts.{to_camel(key)}", port))
        if self.openhydra.enabled:
            ports.append(("openhydra.uiNodePort", self.openhydra.ui_node_port))
        return ports


def cross_field_problems(cfg: StackConfig, base_dir: Path) -> list[tuple[str, str]]:
    """Rules that span sections. Returns (key path, message) pairs; empty when valid."""
    problems: list[tuple[str, str]] = []
    add = problems.append
    cl = cfg.cluster
    nodes = _cluster_nodes(cl)

    if cl.kubeconfig is not None:
        if cl.servers or cl.agents:
            add(("cluster.kubeconfig", "existing-cluster mode (kubeconfig given) excludes servers and agents"))
    else:
        if not cl.servers:
            add(
                (
                    "cluster.servers",
                    "at least one server is required (or give cluster.kubeconfig for an existing cluster)",
                )
            )
        if len(cl.servers) > 1 and len(cl.servers) % 2 == 0:
            add(("cluster.servers", f"{len(cl.servers)} servers: HA embedded etcd needs an odd number (1, 3, 5, ...)"))
        ssh = cl.ssh
        if ssh.private_key is None and ssh.private_key_path is None and ssh.password is None:
            add(("cluster.ssh", "no SSH credential: give privateKey, privateKeyPath or password"))
        if ssh.private_key_path is not None and not _resolve(base_dir, ssh.private_key_path).is_file():
            add(("cluster.ssh.privateKeyPath", f"file not found: {ssh.private_key_path}"))
        if cl.k3s.airgap is not None and cl.k3s.install == "airgap":
            for field in ("binary", "images", "install_script"):
                path = getattr(cl.k3s.airgap, field)
                if not _resolve(base_dir, path).is_file():
                    add((f"cluster.k3s.airgap.{to_camel(field)}", f"file not found on the provisioner: {path}"))

    seen_names: dict[str, str] = {}
    seen_hosts: dict[tuple[str, int], str] = {}
    for key, node in nodes:
        if node.name in seen_names:
            add((f"{key}.name", f"duplicate node name {node.name!r} (also {seen_names[node.name]}.name)"))
        seen_names.setdefault(node.name, key)
        endpoint = (node.host, node.port or cl.ssh.port)
        if endpoint in seen_hosts:
            add((f"{key}.host", f"duplicate address {node.host}:{endpoint[1]} (also {seen_hosts[endpoint]}.host)"))
        seen_hosts.setdefault(endpoint, key)
        if node.host_key is None and not cl.ssh.allow_unpinned_host_keys:
            add(
                (
                    f"{key}.hostKey",
                    "missing: pin the node's SSH host key (see README) or set cluster.ssh.allowUnpinnedHostKeys",
                )
            )

    has_gpu = any(n.gpu for _, n in nodes)
    if cl.kubeconfig is None:
        if cfg.csghub.enabled and cfg.csghub.gpu and not has_gpu:
            add(("csghub.gpu", "GPU workloads need at least one node with gpu: true"))
        if cfg.openhydra.enabled and cfg.openhydra.gpu_time_slicing.enabled and not has_gpu:
            add(("openhydra.gpuTimeSlicing.enabled", "GPU time slicing needs at least one node with gpu: true"))
        for layer_key, wanted in (
            ("octopus.nodes", cfg.octopus.nodes if cfg.octopus and cfg.octopus.enabled else []),
            ("openhydra.nodes", cfg.openhydra.nodes if cfg.openhydra.enabled else []),
        ):
            for i, name in enumerate(wanted):
                if name not in seen_names:
                    add((f"{layer_key}[{i}]", f"no node named {name!r} in cluster.servers or cluster.agents"))
        if cfg.octopus is not None and cfg.octopus.enabled and not cfg.octopus.nodes:
            add(("octopus.nodes", "name at least one node to carry Octopus (it gets the nodeSelector label)"))

    if cfg.octopus is not None and cfg.octopus.enabled:
        repo = cfg.octopus.repo
        for field in ("ca_file", "cert_file", "key_file", "local_path"):
            path = getattr(repo, field)
            if path is not None and not _resolve(base_dir, path).exists():
                add((f"octopus.repo.{to_camel(field)}", f"file not found on the provisioner: {path}"))
        local_kinds = {"hostPath", "local"}
        if cl.kubeconfig is not None and not cfg.octopus.nodes:
            for vol in ("minio", "mysql", "redis", "logger", "logstash"):
                if local_kinds & set(getattr(cfg.octopus.volumes, vol).source):
                    add((f"octopus.volumes.{vol}.source", "a node-local volume needs octopus.nodes to pin it to"))

    # NodePorts: each port at most once across every layer.
    owners: dict[int, str] = {}
    for key, port in cfg.node_ports():
        if port in owners:
            add((key, f"NodePort {port} is also used by {owners[port]}"))
        owners.setdefault(port, key)

    # Layer dependencies.
    if cfg.gateway.enabled and not cfg.csghub.enabled:
        add(("gateway.enabled", "the gateway is the CSGHub chart's Envoy Gateway: it needs csghub.enabled"))
    if cfg.csghub.enabled and not cfg.gateway.enabled:
        add(("csghub.enabled", "CSGHub 1.17 needs its gateway: set gateway.enabled true"))
    if cfg.csghub.enabled and not cfg.knative.enabled:
        add(("knative.enabled", "the CSGHub runner needs the Knative settings: set knative.enabled true"))
    df = cfg.dataflow
    if df.enabled:
        if cfg.csghub.enabled and df.standalone:
            add(
                (
                    "dataflow.standalone",
                    "a standalone Dataflow release beside CSGHub 1.17 would create a second GatewayClass "
                    "'csghub-gateway'; beside CSGHub, Dataflow is the CSGHub release's bundled subchart (set false)",
                )
            )
        if not cfg.csghub.enabled and not df.standalone:
            add(("dataflow.standalone", "Dataflow without the CSGHub layer must be standalone: set true"))
        if not cfg.csghub.enabled and df.external_url is None:
            add(("dataflow.externalUrl", "required when the CSGHub layer is off: the URL of the CSGHub portal"))
        if not cfg.csghub.enabled and df.domain is None:
            add(("dataflow.domain", "required when the CSGHub layer is off: the gateway domain"))
        if "ReadWriteMany" in df.persistence.access_modes and df.persistence.storage_class is None:
            if cfg.storage.nfs is None:
                add(
                    (
                        "dataflow.persistence.storageClass",
                        "ReadWriteMany needs an RWX class: set storage.nfs or name one (local-path cannot serve RWX)",
                    )
                )
    storage = cfg.storage
    if storage.enabled and storage.mode == "local-static" and cl.kubeconfig is not None:
        add(("storage.mode", "local-static prepares disks on the nodes over SSH: not possible on an existing cluster"))
    return problems


def _resolve(base_dir: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p
