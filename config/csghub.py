"""CSGHub config: the CSGHub 1.17 release, its built-in or external services."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from config.base import Admin, ChartSource, Image, Model, Secret
from config.fields import (
    DnsName,
    Host,
    HostPort,
    HttpUrl,
    K8sName,
    K8sObjectName,
    Port,
    Quantity,
    RepoPath,
    TimeZone,
    UserName,
    Word,
)

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class ExternalPostgres(Model):
    host: Host
    port: Port = 5432
    user: UserName
    password: Secret
    sslmode: SslMode = Field(
        default="verify-full",
        description="verify-full (default) encrypts and checks the server's certificate and name; `require` "
        "encrypts without checking who answers; `disable`/`allow`/`prefer` may send the password in clear.",
    )
    timezone: TimeZone = "Etc/UTC"


class ExternalRedis(Model):
    host: Host
    port: Port = 6379
    password: Secret | None = None


class ExternalMongo(Model):
    host: Host
    port: Port = 27017
    user: UserName
    password: Secret


class ExternalObjectStore(Model):
    endpoint: HttpUrl
    access_key: Secret
    secret_key: Secret
    region: Word = "cn-north-1"
    secure: bool = True
    path_style: bool = True


class ExternalRegistry(Model):
    registry: HostPort
    repository: RepoPath = "csghub"
    username: Word
    password: Secret
    insecure: bool = False


class ExternalGitaly(Model):
    scheme: Literal["tcp", "tls", "unix"] = "tcp"
    host: Host
    port: Port = 8075
    token: Secret
    storage: Word = "default"


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

    storage_class: K8sObjectName | None = Field(
        default=None, description="StorageClass (default: the cluster default)."
    )
    postgresql: Quantity = "50Gi"
    redis: Quantity = "10Gi"
    minio: Quantity = "200Gi"
    gitaly: Quantity = "200Gi"
    nats: Quantity = "10Gi"


class CsghubCredentials(Model):
    """Credentials of built-in services that the chart would otherwise generate predictably
    (from the install minute); each generated (secret) when absent."""

    loki_password: Secret | None = Field(default=None, description="Loki gateway basic-auth password.")
    prometheus_password: Secret | None = Field(default=None, description="Prometheus gateway basic-auth password.")


class Csghub(Model):
    enabled: bool = True
    namespace: K8sName = "csghub"
    chart: ChartSource = Field(
        default_factory=lambda: ChartSource(
            repository="https://charts.opencsg.com/csghub", name="csghub", version="1.17.0"
        )
    )
    domain: DnsName = Field(
        default="example.com",
        description="global.gateway.external.domain: the portal and the registry are served at this host; other "
        "services at <service>.<base>, <base> being the domain minus its first label when it has 3 or more labels "
        "(docs/config.md, 'CSGHub host names').",
    )
    public_domain: DnsName | None = Field(
        default=None,
        description="global.gateway.external.public: spaces are served at *.<public> (default: the domain, or "
        "csghub.<domain> for a 2-label domain).",
    )
    edition: Literal["ce", "ee"] = "ce"
    image: Image = Field(default_factory=Image)
    persistence: Persistence = Field(default_factory=Persistence)
    gpu: bool = Field(default=False, description="Schedule GPU workloads (needs a node with gpu: true).")
    services: CsghubServices = Field(default_factory=CsghubServices)
    admin: Admin = Field(default_factory=Admin)
    credentials: CsghubCredentials = Field(default_factory=CsghubCredentials)
    coredns_hosts: bool = Field(
        default=True, description="Resolve the CSGHub host names in CoreDNS and the nodes' /etc/hosts (no DNS)."
    )
    node_registry: bool = Field(default=True, description="Add the CSGHub registry to every node's registries.yaml.")
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="Pass-through chart values, merged last. Keys the program sets from typed config are refused.",
    )
