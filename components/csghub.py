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
from components.secrets import given_or_generated, secret_leaves
from config.csghub import Csghub
from config.gateway import Gateway

Secret = Callable[[str], Any]
COREDNS_HASH_ANNOTATION = "ai-platform.io/coredns-custom-sha256"
# Services with an HTTPRoute at <service>.<base>: (name, values key that switches it, default).
SERVICE_ROUTES = (
    ("casdoor", ("casdoor", "gateway", "enabled"), True),
    ("minio", ("minio", "gateway", "enabled"), True),
    ("loki", ("loki", "gateway", "enabled"), False),
    ("prometheus", ("prometheus", "gateway", "enabled"), False),
)


@dataclass(frozen=True)
class Endpoints:
    """Every CSGHub host name and endpoint, computed from the config exactly as chart 1.17's
    templates do (`common/templates/_domain.tpl`, `common.endpoint`, `common.registry.config`;
    ../shared/CHARTS.md, *domain and hostnames*):

    - the portal is served at the domain itself (`common.domain.csghub`);
    - other services at `<service>.<base>`, `<base>` being the domain minus its first label
      when it has 3 or more labels, else the domain (`domain.base`);
    - spaces at `*.<public>`: `global.gateway.external.public`, else the domain, else
      `csghub.<domain>` for a 2-label domain (`common.domain.public`);
    - URLs are `scheme://host`, plus `:<nodePorts.http|https>` in NodePort mode;
    - the registry is the portal's endpoint without its scheme: images are
      `<domain>[:port]/<namespace>/...`.
    """

    domain: str
    base: str
    public: str
    hosts: dict[str, str]  # "portal" → the domain, "casdoor" → casdoor.<base>, ...
    scheme: str
    port: int | None  # the NodePort in URLs, None with LoadBalancer

    def url(self, service: str) -> str:
        suffix = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{self.hosts[service]}{suffix}"

    @property
    def registry(self) -> str:
        """host[:port] the images name and the nodes' registries.yaml is keyed by."""
        return self.url("portal").split("://", 1)[1]

    @property
    def spaces(self) -> str:
        return f"*.{self.public}"

    def names(self) -> list[str]:
        """Every exact host name an HTTPRoute serves (the spaces wildcard aside), portal first."""
        return list(dict.fromkeys(self.hosts.values()))


def _value(values: Mapping[str, Any], path: tuple[str, ...], default: bool) -> bool:
    node: Any = values
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return bool(node)


def endpoints(cfg: Csghub, gateway: Gateway) -> Endpoints:
    """The one place CSGHub host names and URLs come from (outputs, CoreDNS, /etc/hosts,
    registries.yaml, Dataflow's external URL, the docs)."""
    domain = cfg.domain
    labels = domain.split(".")
    base = ".".join(labels[1:]) if len(labels) >= 3 else domain
    public = cfg.public_domain or (domain if len(labels) >= 3 else f"csghub.{domain}")
    hosts = {"portal": domain}
    for name, switch, default in SERVICE_ROUTES:
        if _value(cfg.values, switch, default):
            hosts[name] = f"{name}.{base}"
    port = None
    if gateway.service_type == "NodePort":
        port = gateway.node_ports.https if gateway.tls else gateway.node_ports.http
    return Endpoints(domain, base, public, hosts, "https" if gateway.tls else "http", port)


def _external_services(cfg: Csghub, secret: Secret, services: tuple[str, ...]) -> dict[str, Any]:
    """`global.<service>` for the services the chart line has: built-in, or external."""
    s = cfg.services
    out: dict[str, Any] = {}

    def put(key: str, ext: dict[str, Any] | None) -> None:
        if key in services:
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
    credentials: Mapping[str, Any] | None = None,
    passthrough_secret: bool = False,
    services: tuple[str, ...] = ("postgresql", "redis", "mongo", "objectStore", "registry", "gitaly"),
) -> dict[str, Any]:
    """The release's values. `secret` wraps each secret leaf (Output.secret, or a placeholder);
    CREDENTIALS are the generated or configured passwords of built-in services (loki,
    prometheus: basic auth of their gateways); PASSTHROUGH_SECRET keeps every leaf of the
    pass-through `values` secret (its config key held a `secure:` value)."""
    glob: dict[str, Any] = {"edition": cfg.edition, "gateway": gateway, **_external_services(cfg, secret, services)}
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
        # the chart line's keys (components/csghub_lines/): Knative, storage class, GPU labels
        "runner": runner,
    }
    for service, password in sorted((credentials or {}).items()):
        values[service] = {"gateway": {"basicAuth": {"username": service, "password": password}}}
    if dataflow is not None:
        values = merge(values, dataflow)
    else:
        values["dataflow"] = {"enabled": False}
    return merge(values, secret_leaves(cfg.values, secret) if passthrough_secret else cfg.values)


# Chart keys the program sets from typed config → the key to use instead.
OWNED_VALUES = (
    ("casdoor.admin", "csghub.admin"),
    ("global.gateway", "gateway (and csghub.domain, csghub.publicDomain)"),
    ("global.image", "csghub.image"),
    ("global.persistence", "csghub.persistence.storageClass"),
    ("global.edition", "csghub.edition"),
    ("global.dataflow", "dataflow"),
    ("global", "csghub.services"),
    ("dataflow", "dataflow"),
    ("runner.knative", "knative"),
    ("runner", "csghub.persistence.storageClass / csghub.gpu"),
    ("loki.gateway.basicAuth", "csghub.credentials.lokiPassword"),
    ("prometheus.gateway.basicAuth", "csghub.credentials.prometheusPassword"),
    ("", "csghub.persistence"),
)


def owned_overrides(
    program: Mapping[str, Any], passthrough: Mapping[str, Any], owners: Any = OWNED_VALUES
) -> list[tuple[str, str]]:
    """(chart key, typed config key) of every pass-through leaf that would override a value
    the program sets: silently winning there would make the typed config (and outputs such as
    the admin password) lie."""
    found = []

    def walk(mine: Any, theirs: Any, path: str) -> None:
        if isinstance(theirs, Mapping) and isinstance(mine, Mapping):
            for k, v in theirs.items():
                if k in mine:
                    walk(mine[k], v, f"{path}.{k}" if path else str(k))
            return
        owner = next(o for prefix, o in owners if path == prefix or path.startswith(f"{prefix}.") or not prefix)
        found.append((path, owner))

    walk(program, passthrough, "")
    return found


def node_registry_entries(secret_data: Mapping[str, str] | None, ep: Endpoints) -> dict[str, Any]:
    """The chart's `<release>-registry` secret → registries.yaml entries for the nodes: the
    registry as the images name it (`host[:port]`), reached at the portal's endpoint (plain
    HTTP when the gateway has no TLS), with the chart's credentials."""
    data = secret_data or {}
    user = base64.b64decode(data.get("REGISTRY_USERNAME", "")).decode()
    password = base64.b64decode(data.get("REGISTRY_PASSWORD", "")).decode()
    return {
        "mirrors": {ep.registry: {"endpoint": [ep.url("portal")]}},
        "configs": {ep.registry: {"auth": {"username": user, "password": password}}},
    }


def _zone_of(name: str, zones: list[str]) -> str:
    return next(z for z in zones if name == z or name.endswith(f".{z}"))


def coredns_corefile(ep: Endpoints, address: str) -> dict[str, str]:
    """`coredns-custom` data: one `<zone>.server` block per zone the CSGHub names live in,
    answering them (and the spaces wildcard) with the gateway ADDRESS, forwarding the rest.
    Every piece is a validated name or IP (config/fields.py), so nothing here can open or
    close a block."""
    zones = [ep.base] + ([ep.public] if not (ep.public == ep.base or ep.public.endswith(f".{ep.base}")) else [])
    rtype = "AAAA" if ":" in address else "A"
    out = {}
    for zone in zones:
        names = [n for n in ep.names() if _zone_of(n, zones) == zone]
        lines = [f"{zone}:53 {{", "    errors"]
        if names:
            lines += ["    hosts {", f"        {address} {' '.join(names)}", "        fallthrough", "    }"]
        if _zone_of(ep.public, zones) == zone:
            pattern = "^[^.]+[.]" + ep.public.replace(".", "[.]") + "[.]$"
            lines += [
                f"    template IN {rtype} {ep.public} {{",
                f'        match "{pattern}"',
                f'        answer "{{{{ .Name }}}} 60 IN {rtype} {address}"',
                "        fallthrough",
                "    }",
            ]
        lines += ["    forward . /etc/resolv.conf", "}"]
        out[f"{zone}.server"] = "\n".join(lines) + "\n"
    return out


@dataclass(frozen=True)
class CsghubArgs:
    config: Csghub
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    gateway_values: dict[str, Any]
    runner_values: dict[str, Any]
    storage_class: str | None
    gateway_address: pulumi.Input[str]
    endpoints: Endpoints
    # The csghub config key held a `secure:` value: every pass-through value stays secret.
    values_secret: bool = False
    # Refuses (raises) an unacknowledged in-place change of the chart line; the Release
    # waits for it (its description), so a refused upgrade is never registered.
    line_guard: pulumi.Input[str] = "CSGHub (ai-platform)"
    # The chart line's built-in-or-external services (components/csghub_lines/).
    services: tuple[str, ...] = ("postgresql", "redis", "mongo", "objectStore", "registry", "gitaly")
    # Resources that must exist before the Release (a line migration's pre-steps).
    before_release: list[pulumi.Resource] = field(default_factory=list)
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

        # The built-in services whose passwords the chart would derive from the install minute
        # and whose values accept one (the others: docs/platform.md).
        self.service_credentials: dict[str, pulumi.Output[str]] = {
            service: given_or_generated(
                f"{name}-{service}-password", getattr(cfg.credentials, f"{service}_password"), 32, self
            )
            for service in ("loki", "prometheus")
            if service in args.endpoints.hosts
        }
        values = build_values(
            cfg,
            gateway=args.gateway_values,
            runner=args.runner_values,
            dataflow=args.dataflow_values(secret) if args.dataflow_values else None,
            storage_class=args.storage_class,
            admin_password=password,
            secret=secret,
            credentials=self.service_credentials,
            passthrough_secret=args.values_secret,
            services=args.services,
        )
        self.release = helm.release(
            f"{name}-release",
            cfg.chart,
            name="csghub",
            namespace=args.namespace,
            values=values,
            # Hooks (the runner's KnativeServing, migrations) must finish: wait for them.
            timeout=1800,
            description=args.line_guard,
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(protect=True, depends_on=[*args.depends_on, *args.before_release])
            ),
        )
        self.revision = self.release.status.apply(lambda s: s.revision if s else None)
        release_name: pulumi.Output[str] = self.release.status.apply(lambda s: (s.name if s else None) or "csghub")
        release_ns: pulumi.Output[str] = self.release.status.apply(lambda s: (s.namespace if s else None) or "")

        if cfg.coredns_hosts:
            self._coredns(name, cfg, args, k8s_opts)

        secret_id = pulumi.Output.concat(release_ns, "/", release_name, "-registry")
        registry_secret = k8s.core.v1.Secret.get(f"{name}-registry-secret", secret_id, opts=k8s_opts)
        ep = args.endpoints
        self.node_registries = pulumi.Output.secret(  # type: ignore[arg-type]
            registry_secret.data.apply(lambda data: node_registry_entries(data, ep))
        )
        self.register_outputs({"adminUsername": self.admin_username, "adminPassword": self.admin_password})

    def _coredns(self, name: str, cfg: Csghub, args: CsghubArgs, opts: pulumi.ResourceOptions) -> None:
        ep = args.endpoints
        data = pulumi.Output.from_input(args.gateway_address).apply(lambda a: coredns_corefile(ep, a))
        custom = k8s.core.v1.ConfigMap(
            f"{name}-coredns-custom",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="coredns-custom", namespace="kube-system"),
            data=data,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.release])),
        )
        digest = data.apply(lambda d: hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest())
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
    services: list[str] | None = None,
    line_services: tuple[str, ...] = ("postgresql", "redis", "mongo", "objectStore", "registry", "gitaly"),
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
        credentials={s: "[secret]" for s in services or []},
        services=line_services,
    )
    plain: dict[str, Any] = json.loads(json.dumps(values))
    return plain
