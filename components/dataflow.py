"""Dataflow (seed 002): Label Studio and the data pipelines, with embedded or external
PostgreSQL, Redis and MongoDB.

- Beside CSGHub: the CSGHub release's bundled `dataflow` subchart. This component builds
  the `dataflow:` block (and `global.mongo` when Mongo is external and nothing else in
  CSGHub uses one) and hands it to the CSGHub component — data, not a second release.
  A standalone release there would create a second GatewayClass `csghub-gateway`; the
  config model refuses that combination.
- On its own (CSGHub off, or in another cluster): its own release of chart `dataflow`
  with `global.chartContext.isBuiltIn: false` and `externalUrl` pointing at CSGHub. The
  CSGHub side then sets `global.dataflow.enabled: false` and
  `global.dataflow.external.{host, port}` to this release's gateway.

Passwords are chart values: each travels as a Pulumi secret, so the release's values are
encrypted in state and masked in previews.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import helm
from components.secrets import secret_leaves
from config.csghub import ExternalMongo, ExternalPostgres, ExternalRedis
from config.dataflow import Dataflow

Secret = Callable[[str], Any]


def _pg(db: ExternalPostgres, database: str, secret: Secret) -> dict[str, Any]:
    return {
        "host": db.host,
        "port": db.port,
        "user": db.user,
        "password": secret(db.password.get_secret_value()),
        "database": database,
        "sslmode": db.sslmode,
        "timezone": db.timezone,
    }


def _redis(db: ExternalRedis, secret: Secret) -> dict[str, Any]:
    out: dict[str, Any] = {"host": db.host, "port": db.port}
    if db.password is not None:
        out["password"] = secret(db.password.get_secret_value())
    return out


def _mongo(db: ExternalMongo, secret: Secret) -> dict[str, Any]:
    return {"host": db.host, "port": db.port, "user": db.user, "password": secret(db.password.get_secret_value())}


def _persistence(cfg: Dataflow, storage_class: str | None) -> dict[str, Any]:
    p = cfg.persistence
    out: dict[str, Any] = {"accessModes": list(p.access_modes), "size": p.size}
    sc = p.storage_class or storage_class
    if sc:
        out["storageClass"] = sc
    return out


def service_values(cfg: Dataflow, storage_class: str | None, secret: Secret) -> dict[str, Any]:
    """`dataflow` + `labelStudio` blocks (the same keys in both charts)."""
    dbs = cfg.databases
    dataflow: dict[str, Any] = {"persistence": _persistence(cfg, storage_class)}
    label: dict[str, Any] = {"persistence": _persistence(cfg, storage_class)}
    if dbs.postgresql.external is not None:
        dataflow["postgresql"] = _pg(dbs.postgresql.external, dbs.dataflow_database, secret)
        label["postgresql"] = _pg(dbs.postgresql.external, dbs.label_studio_database, secret)
    if dbs.redis.external is not None:
        dataflow["redis"] = _redis(dbs.redis.external, secret)
    if dbs.mongo.external is not None:
        dataflow["mongo"] = _mongo(dbs.mongo.external, secret)
    if cfg.image.registry:
        for block in (dataflow, label):
            block["image"] = {"registry": cfg.image.registry}
    return {"dataflow": dataflow, "labelStudio": label}


def bundled_values(cfg: Dataflow, storage_class: str | None, csghub_has_mongo: bool, secret: Secret) -> dict[str, Any]:
    """Values merged into the CSGHub release (top-level keys)."""
    out: dict[str, Any] = {"dataflow": {"enabled": True, **service_values(cfg, storage_class, secret)}}
    mongo = cfg.databases.mongo.external
    if mongo is not None and not csghub_has_mongo:
        out["global"] = {"mongo": {"enabled": False, "external": _mongo(mongo, secret)}}
    return out


def _global_db(external: dict[str, Any] | None) -> dict[str, Any]:
    if external is None:
        return {"enabled": True}
    return {"enabled": False, "external": external}


def standalone_values(cfg: Dataflow, storage_class: str | None, external_url: str, secret: Secret) -> dict[str, Any]:
    dbs = cfg.databases
    pg = dbs.postgresql.external
    glob: dict[str, Any] = {
        "edition": cfg.edition,
        "chartContext": {"isBuiltIn": False},
        "gateway": {
            "external": {"domain": cfg.domain},
            "tls": {"enabled": cfg.tls_secret_name is not None}
            | ({"secretName": cfg.tls_secret_name} if cfg.tls_secret_name else {}),
        },
        "postgresql": _global_db(
            None
            if pg is None
            else {
                "host": pg.host,
                "port": pg.port,
                "user": pg.user,
                "password": secret(pg.password.get_secret_value()),
                "sslmode": pg.sslmode,
                "timezone": pg.timezone,
            },
        ),
        "redis": _global_db(None if dbs.redis.external is None else _redis(dbs.redis.external, secret)),
        "mongo": _global_db(None if dbs.mongo.external is None else _mongo(dbs.mongo.external, secret)),
    }
    if cfg.image.registry:
        glob["image"] = {"registry": cfg.image.registry}
    sc = cfg.persistence.storage_class or storage_class
    if sc:
        glob["persistence"] = {"storageClass": sc}
    return {"global": glob, "externalUrl": external_url, **service_values(cfg, storage_class, secret)}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: `extra` wins; nested mappings merge."""
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def as_secret(value: str) -> pulumi.Output[str]:
    return pulumi.Output.secret(value)


def placeholder(_: str) -> str:
    return "[secret]"


@dataclass(frozen=True)
class DataflowArgs:
    config: Dataflow
    provider: k8s.Provider
    base_dir: Path
    storage_class: str | None
    # Bundled beside CSGHub (True) or its own release (False).
    bundled: bool
    csghub_has_mongo: bool = False
    # CSGHub's portal URL (standalone: config externalUrl wins).
    csghub_url: pulumi.Input[str] | None = None
    # The dataflow config key held a `secure:` value: every pass-through value stays secret.
    values_secret: bool = False


class DataflowLayer(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, args: DataflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:Dataflow", name, None, opts)
        self._args = args
        cfg = args.config
        if args.bundled:
            self.url = pulumi.Output.from_input(args.csghub_url or "")
        else:
            k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
            ns = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=cfg.namespace),
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(protect=True)),
            )
            external_url = cfg.external_url or ""
            passthrough = secret_leaves(cfg.values, as_secret) if args.values_secret else cfg.values
            values = merge(standalone_values(cfg, args.storage_class, external_url, as_secret), passthrough)
            helm.release(
                f"{name}-dataflow",
                cfg.chart,
                name="dataflow",
                namespace=ns.metadata.apply(lambda m: m.name or cfg.namespace),
                values=values,
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(protect=True)),
            )
            scheme = "https" if cfg.tls_secret_name else "http"
            self.url = pulumi.Output.from_input(f"{scheme}://{cfg.domain}")
        self.register_outputs({"url": self.url})

    def csghub_values(self, secret: Secret = as_secret) -> dict[str, Any]:
        """The part of the CSGHub release's values this layer owns (bundled mode)."""
        a = self._args
        return bundled_values(a.config, a.storage_class, a.csghub_has_mongo, secret)
