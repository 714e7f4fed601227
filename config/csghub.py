"""CSGHub config: the CSGHub 1.17 release, its built-in or external services."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from config.base import Admin, ChartSource, Image, ManifestSource, Model, Secret, pinned
from config.fields import (
    DnsName,
    Host,
    HostPort,
    HttpUrl,
    ImageRef,
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
DatabaseName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]


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
    databases: list[DatabaseName] = Field(
        default_factory=list,
        description="CSGHub 2.x: the databases that exist on this server. 2.x needs csghub_agenticflow and "
        "csghub_superset besides 1.17's (and timescaledb preloaded); the chart creates databases only on its "
        "built-in PostgreSQL.",
    )


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


class Migration(Model):
    """An in-place change of an existing release's chart line (1.17 → 2.4): refused unless
    acknowledged; then its pre-steps run as declared resources before the Release upgrade."""

    acknowledge: Literal["1.17-to-2.4"] | None = Field(
        default=None,
        description="Set to 1.17-to-2.4 after taking the backup README 'CSGHub 2.4' describes: Dataflow's MongoDB "
        "data is not migrated, Volcano is removed unless csghub.volcano, casdoor jumps a major version.",
    )
    envoy_gateway_crds: ManifestSource = pinned(
        "https://github.com/envoyproxy/gateway/releases/download/v1.7.5/envoy-gateway-crds.yaml"
    )
    kubectl_image: ImageRef = Field(
        default="registry.k8s.io/kubectl:v1.30.4", description="Runs the Job that removes the old release's Jobs."
    )


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
    knative_ingress: Literal["gateway-api", "kourier"] | None = Field(
        default=None,
        description="Chart 2.x: how Knative services are reached (runner.knative.serving.ingress). gateway-api "
        "(default): through the same Envoy Gateway, no Kourier to pin; kourier: the 1.17 way.",
    )
    volcano: bool | None = Field(
        default=None, description="Chart 2.x: the Volcano scheduler (runner.volcano.enabled; chart default off)."
    )
    agent_sandbox: bool | None = Field(
        default=None,
        description="Chart 2.x: the agent-sandbox subchart (CRDs + controller) the chart installs (on); 2.4.0's "
        "values.yaml has no key to switch it off.",
    )
    migration: Migration = Field(default_factory=Migration)
    coredns_hosts: bool = Field(
        default=True, description="Resolve the CSGHub host names in CoreDNS and the nodes' /etc/hosts (no DNS)."
    )
    node_registry: bool = Field(default=True, description="Add the CSGHub registry to every node's registries.yaml.")
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="Pass-through chart values, merged last. Keys the program sets from typed config are refused.",
    )
