"""Dataflow config (seed 002): embedded or external PostgreSQL, Redis and MongoDB."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from config.base import ChartSource, Image, Model
from config.csghub import DatabaseName, ExternalMongo, ExternalPostgres, ExternalRedis
from config.fields import DnsName, HttpsUrl, K8sName, K8sObjectName, Quantity

AccessMode = Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"]


class DataflowPostgres(Model):
    mode: Literal["embedded", "external"] = "embedded"
    external: ExternalPostgres | None = Field(
        default=None,
        description="External PostgreSQL. Its databases (databases.dataflowDatabase, "
        "databases.labelStudioDatabase) must exist: the chart creates them only on its built-in PostgreSQL.",
    )


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
    dataflow_database: DatabaseName = "csghub_dataflow"
    label_studio_database: DatabaseName = "csghub_label_studio"

    @model_validator(mode="after")
    def _external(self) -> DataflowDatabases:
        for name in ("postgresql", "redis", "mongo"):
            db = getattr(self, name)
            if db.mode == "external" and db.external is None:
                raise ValueError(f"{name}.mode is 'external' but {name}.external (host, port, ...) is missing")
            if db.mode == "embedded" and db.external is not None:
                raise ValueError(f"{name}.external is set but {name}.mode is 'embedded'")
        return self


def _rwx() -> list[AccessMode]:
    return ["ReadWriteMany"]


class DataflowPersistence(Model):
    storage_class: K8sObjectName | None = Field(
        default=None, description="ReadWriteMany class (production: storage.nfs)."
    )
    access_modes: list[AccessMode] = Field(default_factory=_rwx, min_length=1)
    size: Quantity = "100Gi"


class Dataflow(Model):
    enabled: bool = True
    standalone: bool = Field(
        default=False,
        description="Own release (CSGHub off or in another cluster). Beside CSGHub it is the bundled subchart.",
    )
    namespace: K8sName = "dataflow"
    chart: ChartSource = Field(
        default_factory=lambda: ChartSource(
            repository="https://charts.opencsg.com/csghub", name="dataflow", version="1.17.0"
        )
    )
    edition: Literal["ce", "ee"] = "ce"
    domain: DnsName | None = Field(default=None, description="Gateway domain (standalone; default csghub.domain).")
    tls_secret_name: K8sObjectName | None = Field(default=None, description="TLS secret for the gateway (standalone).")
    external_url: HttpsUrl | None = Field(
        default=None, description="CSGHub URL, https (default: the CSGHub layer's portal URL)."
    )
    image: Image = Field(default_factory=Image)
    databases: DataflowDatabases = Field(default_factory=DataflowDatabases)
    persistence: DataflowPersistence = Field(default_factory=DataflowPersistence)
    values: dict[str, Any] = Field(
        default_factory=dict, description="Pass-through chart values (standalone release), merged last."
    )
