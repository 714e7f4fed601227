"""CSGHub: the `csghub` Helm release (chart 1.17.0) and the wiring that follows it.

Values are built key by key from typed config as CHARTS.md maps seed 000 onto 1.17
(`build_values`), with the gateway, Knative and Dataflow parts handed in by those layers.
Nothing the 1.17 chart dropped is created: no `kube-configs` secret, no CA copied into
Knative. After the release, by data:
- CoreDNS: `coredns-custom` in kube-system gets a `<domain>.server` block resolving the
  CSGHub hostnames to the gateway address; CoreDNS restarts only when that content changes
  (its hash is a pod-template annotation, applied with a DeploymentPatch).
- Registry: the chart's `<release>-registry` secret is read (a `get` whose id depends on
  the release) and becomes the node mirror + credentials that the K3s component rolls out.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import helm
from components.dataflow import merge
from stacks.model import Csghub

Secret = Callable[[str], Any]
HOSTS = ("csghub", "casdoor", "minio", "registry")
COREDNS_HASH_ANNOTATION = "ai-platform.io/coredns-custom-sha256"


def hostnames(domain: str) -> dict[str, str]:
    return {h: f"{h}.{domain}" for h in HOSTS}


def _external_services(cfg: Csghub, secret: Secret) -> dict[str, Any]:
    s = cfg.services
    out: dict[str, Any] = {}

    def put(key: str, ext: dict[str, Any] | None) -> None:
        out[key] = {"enabled": True} if ext is None else {"enabled": False, "external": ext}

    put(
        "postgresql",
        None
        if s.postgresql is None
        else {
            "host": s.postgresql.host,
            "port": s.postgresql.port,
            "user": s.postgresql.user,
            "password": secret(s.postgresql.password.get_secret_value()),
            "timezone": s.postgresql.timezone,
            "sslmode": s.postgresql.sslmode,
        },
    )
    put(
        "redis",
        None
        if s.redis is None
        else {"host": s.redis.host, "port": s.redis.port}
        | ({"password": secret(s.redis.password.get_secret_value())} if s.redis.password else {}),
    )
    put(
        "mongo",
        None
        if s.mongo is None
        else {
            "host": s.mongo.host,
            "port": s.mongo.port,
            "user": s.mongo.user,
            "password": secret(s.mongo.password.get_secret_value()),
        },
    )
    put(
        "objectStore",
        None
        if s.object_store is None
        else {
            "endpoint": s.object_store.endpoint,
            "accessKey": secret(s.object_store.access_key.get_secret_value()),
            "secretKey": secret(s.object_store.secret_key.get_secret_value()),
            "region": s.object_store.region,
            "secure": str(s.object_store.secure).lower(),
            "pathStyle": str(s.object_store.path_style).lower(),
        },
    )
    put(
        "registry",
        None
        if s.registry is None
        else {
            "registry": s.registry.registry,
            "repository": s.registry.repository,
            "username": s.registry.username,
            "password": secret(s.registry.password.get_secret_value()),
            "insecure": str(s.registry.insecure).lower(),
        },
    )
    put(
        "gitaly",
        None
        if s.gitaly is None
        else {
            "scheme": s.gitaly.scheme,
            "host": s.gitaly.host,
            "port": s.gitaly.port,
            "token": secret(s.gitaly.token.get_secret_value()),
            "storage": s.gitaly.storage,
        },
    )
    return out


def build_values(
    cfg: Csghub,
    *,
    gateway: dict[str, Any],
    runner: dict[str, Any],
    dataflow: dict[str, Any] | None,
    storage_class: str | None,
    admin_password: Any,
    secret: Secret,
) -> dict[str, Any]:
    """The release's values. `secret` wraps each secret leaf (Output.secret, or a placeholder)."""
    glob: dict[str, Any] = {"edition": cfg.edition, "gateway": gateway, **_external_services(cfg, secret)}
    image: dict[str, Any] = {}
    if cfg.image.registry:
        image["registry"] = cfg.image.registry
    if cfg.image.tag:
        image["tag"] = cfg.image.tag
    if image:
        glob["image"] = image
    sc = cfg.persistence.storage_class or storage_class
    if sc:
        glob["persistence"] = {"storageClass": sc}
    glob["dataflow"] = {"enabled": dataflow is not None}
    p = cfg.persistence
    values: dict[str, Any] = {
        "global": glob,
        "postgresql": {"persistence": {"size": p.postgresql}},
        "redis": {"persistence": {"size": p.redis}},
        "minio": {"persistence": {"size": p.minio}},
        "gitaly": {"persistence": {"size": p.gitaly}},
        "nats": {"persistence": {"size": p.nats}},
        "casdoor": {"admin": {"name": cfg.admin.username, "password": admin_password}},
        "runner": runner,
    }
    if sc:
        values["runner"] = {**runner, "storageClassName": sc}
    if cfg.gpu:
        values["runner"] = {
            **values["runner"],
            "gpuModelLabel": {"typeLabel": "nvidia.com/gpu.product", "capacityLabel": "nvidia.com/gpu"},
        }
    if dataflow is not None:
        values = merge(values, dataflow)
    else:
        values["dataflow"] = {"enabled": False}
    return merge(values, cfg.values)


def node_registry_entries(secret_data: Mapping[str, str] | None, host: str, endpoint: str) -> dict[str, Any]:
    """The chart's `<release>-registry` secret → registries.yaml entries for the nodes."""
    data = secret_data or {}
    user = base64.b64decode(data.get("REGISTRY_USERNAME", "")).decode()
    password = base64.b64decode(data.get("REGISTRY_PASSWORD", "")).decode()
    return {
        "mirrors": {host: {"endpoint": [endpoint]}},
        "configs": {host: {"auth": {"username": user, "password": password}}},
    }


def coredns_server_block(domain: str, address: str) -> str:
    names = " ".join(hostnames(domain).values())
    return (
        f"{domain}:53 {{\n"
        "    errors\n"
        "    hosts {\n"
        f"        {address} {names}\n"
        "        fallthrough\n"
        "    }\n"
        "    forward . /etc/resolv.conf\n"
        "}\n"
    )


@dataclass(frozen=True)
class CsghubArgs:
    config: Csghub
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    gateway_values: dict[str, Any]
    runner_values: dict[str, Any]
    storage_class: str | None
    gateway_address: pulumi.Input[str]
    # registry.<domain> as the nodes reach it, e.g. http://registry.example.com:30080
    registry_endpoint: str
    dataflow_values: Callable[[Secret], dict[str, Any]] | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class CsghubLayer(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    revision: pulumi.Output[Any]
    node_registries: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: CsghubArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:Csghub", name, None, opts)
        cfg = args.config
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)

        if cfg.admin.password is not None:
            password = pulumi.Output.secret(cfg.admin.password.get_secret_value())
        else:
            generated = random.RandomPassword(
                f"{name}-admin-password",
                length=24,
                special=True,
                override_special="!#%+-_=",
                min_upper=2,
                min_lower=2,
                min_numeric=2,
                min_special=1,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
            )
            password = pulumi.Output.secret(generated.result)
        self.admin_username = pulumi.Output.from_input(cfg.admin.username)
        self.admin_password = password

        def secret(v: str) -> Any:
            return pulumi.Output.secret(v)

        values = build_values(
            cfg,
            gateway=args.gateway_values,
            runner=args.runner_values,
            dataflow=args.dataflow_values(secret) if args.dataflow_values else None,
            storage_class=args.storage_class,
            admin_password=password,
            secret=secret,
        )
        self.release = helm.release(
            f"{name}-release",
            cfg.chart,
            name="csghub",
            namespace=args.namespace,
            values=values,
            # Hooks (the runner's KnativeServing, migrations) must finish: wait for them.
            timeout=1800,
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(protect=True, depends_on=args.depends_on)
            ),
        )
        self.revision = self.release.status.apply(lambda s: s.revision if s else None)
        release_name: pulumi.Output[str] = self.release.status.apply(lambda s: (s.name if s else None) or "csghub")
        release_ns: pulumi.Output[str] = self.release.status.apply(lambda s: (s.namespace if s else None) or "")

        if cfg.coredns_hosts:
            self._coredns(name, cfg, args, k8s_opts)

        secret_id = pulumi.Output.concat(release_ns, "/", release_name, "-registry")
        registry_secret = k8s.core.v1.Secret.get(f"{name}-registry-secret", secret_id, opts=k8s_opts)
        host = f"registry.{cfg.domain}"
        endpoint = args.registry_endpoint

        self.node_registries = pulumi.Output.secret(  # type: ignore[arg-type]
            registry_secret.data.apply(lambda data: node_registry_entries(data, host, endpoint))
        )
        self.register_outputs({"adminUsername": self.admin_username, "adminPassword": self.admin_password})

    def _coredns(self, name: str, cfg: Csghub, args: CsghubArgs, opts: pulumi.ResourceOptions) -> None:
        block = pulumi.Output.from_input(args.gateway_address).apply(lambda a: coredns_server_block(cfg.domain, a))
        custom = k8s.core.v1.ConfigMap(
            f"{name}-coredns-custom",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="coredns-custom", namespace="kube-system"),
            data={f"{cfg.domain}.server": block},
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.release])),
        )
        digest = block.apply(lambda text: hashlib.sha256(text.encode()).hexdigest())
        k8s.apps.v1.DeploymentPatch(
            f"{name}-coredns-restart",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name="coredns", namespace="kube-system", annotations={"pulumi.com/patchForce": "true"}
            ),
            spec=k8s.apps.v1.DeploymentSpecPatchArgs(
                template=k8s.core.v1.PodTemplateSpecPatchArgs(
                    metadata=k8s.meta.v1.ObjectMetaPatchArgs(annotations={COREDNS_HASH_ANNOTATION: digest})
                )
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[custom])),
        )


def validation_values(
    cfg: Csghub,
    gateway: dict[str, Any],
    runner: dict[str, Any],
    dataflow: Callable[[Secret], dict[str, Any]] | None,
    storage_class: str | None,
) -> dict[str, Any]:
    """The values with every secret as a placeholder: what schema validation sees."""

    def ph(_: str) -> str:
        return "[secret]"

    values = build_values(
        cfg,
        gateway=gateway,
        runner=runner,
        dataflow=dataflow(ph) if dataflow else None,
        storage_class=storage_class,
        admin_password="[secret]",
        secret=ph,
    )
    plain: dict[str, Any] = json.loads(json.dumps(values))
    return plain
