"""Octopus config (seed 001): a Helm chart from a Harbor chart repository, static PVs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from config import fields
from config.base import Model, Secret
from config.fields import (
    HttpsUrl,
    ImageRegistry,
    K8sName,
    LabelKey,
    LabelValue,
    NodeName,
    NodePort,
    PinnedVersion,
    ProvisionerPath,
    Quantity,
    RepoPath,
    UserName,
    Word,
)

UrlPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]*$", max_length=256)]


_CHECKED: dict[str, dict[str, Callable[[str], str]]] = {
    "hostPath": {"path": fields.node_path},
    "local": {"path": fields.node_path},
    "nfs": {"server": fields.host, "path": fields.node_path},
}


def _check_source(source: dict[str, Any]) -> None:
    """The PersistentVolumeSource kinds whose fields reach a node are checked; others pass as data."""
    if len(source) != 1:
        raise ValueError("source must name exactly one PersistentVolumeSource kind (hostPath, nfs, ...)")
    kind, spec = next(iter(source.items()))
    if not isinstance(kind, str) or not kind.isidentifier() or not isinstance(spec, dict):
        raise ValueError(f"source {kind!r} must be a PersistentVolumeSource kind with a mapping")
    for key, check in _CHECKED.get(kind, {}).items():
        value = spec.get(key)
        if not isinstance(value, str):
            raise ValueError(f"source.{kind}.{key} is required (a string)")
        try:
            check(value)
        except ValueError as exc:
            raise ValueError(f"source.{kind}.{key}: {exc}") from None


class PvSize(Model):
    size: Quantity
    source: dict[str, Any] = Field(
        description="Any PersistentVolumeSource: {hostPath: {path: /data/minio}}, {nfs: {server, path}}, ...",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PvSize:
        _check_source(self.source)
        return self


class OctopusVolumes(Model):
    minio: PvSize
    mysql: PvSize
    redis: PvSize
    logger: PvSize
    logstash: PvSize


class OctopusCredentials(Model):
    """Every default credential of the Octopus chart; each generated when absent."""

    taskset_admin_token: Secret | None = None
    minio_access_key: Secret | None = None
    minio_secret_key: Secret | None = None
    mysql_root_password: Secret | None = None
    redis_password: Secret | None = None
    harbor_user: UserName = "admin"
    harbor_password: Secret | None = None
    admin_user: UserName = "admin"
    admin_password: Secret | None = None
    grafana_password: Secret | None = None


class HarborRepo(Model):
    url: HttpsUrl = Field(description="Harbor chart repository, https://<harbor>/chartrepo/<project>.")
    chart: K8sName = "octopus"
    version: PinnedVersion = "0.1.0"
    ca_file: ProvisionerPath | None = Field(
        default=None,
        description="Harbor's CA (PEM) on the provisioner: trusted for the chart download and, on every node, "
        "for the image pulls from the Harbor host.",
    )
    cert_file: ProvisionerPath | None = None
    key_file: ProvisionerPath | None = None
    username: Word | None = Field(default=None, description="Harbor user: chart download and the nodes' pulls.")
    password: Secret | None = None
    local_path: ProvisionerPath | None = Field(default=None, description="Local chart for airgap.")


class OctopusNodePorts(Model):
    sftpgo: NodePort = 30122
    minio: NodePort = 31311
    mysql: NodePort = 30336
    ingress_http: NodePort = Field(default=30180, description="The bundled nginx ingress controller's HTTP NodePort.")
    ingress_https: NodePort = Field(default=30543, description="The bundled nginx ingress controller's HTTPS NodePort.")


class Octopus(Model):
    enabled: bool = True
    namespace: K8sName = "octopus"
    repo: HarborRepo
    node_selector_key: LabelKey = "octopus.openi.pcl.cn/node"
    node_selector_value: LabelValue = "server"
    nodes: list[NodeName] = Field(default_factory=list, description="Nodes that carry Octopus (get the label).")
    image_registry: ImageRegistry | None = Field(default=None, description="global image repository address.")
    image_pathname: RepoPath | None = Field(default=None, description="global image repository pathname.")
    bitnami_repository: RepoPath = Field(default="bitnamilegacy", description="Where the moved Bitnami images live.")
    ingress_paths: dict[
        Literal[
            "adminserver", "openaiserver", "adminportal", "openaiportal", "logger", "minioWeb", "minioApi", "grafana"
        ],
        UrlPath,
    ] = Field(default_factory=dict, description="Ingress paths per service (absolute paths).")
    volumes: OctopusVolumes
    credentials: OctopusCredentials = Field(default_factory=OctopusCredentials)
    node_ports: OctopusNodePorts = Field(default_factory=OctopusNodePorts)
    values: dict[str, Any] = Field(default_factory=dict)
