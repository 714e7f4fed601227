"""Octopus (seed 001): PCL's one-stop AI platform, a Helm chart from a Harbor chart repository.

What the component declares, in order:

    namespace        the release namespace (`octopus`), created here, not by Helm
    credentials      every default credential of the chart's parameter table, generated
                     (RandomPassword, secret) unless `octopus.credentials.*` gives one
    release          `octopus`, chart version pinned, from the Harbor repository (CA file,
                     client cert/key, username, password as a secret) or a local chart
                     (`repo.localPath`, airgap); values carry the secrets as Pulumi
                     secrets, so the Release is encrypted in state and masked in previews.

Values written (keys from seed 001's parameter table): `global.image.repository.{address,
pathname}`, `global.nodeSelector` (the label the K3s layer puts on `octopus.nodes`; the
bundled nginx-ingress-controller gets the same selector instead of its own
`nginx-ingress: "yes"`), the ingress paths, the volumes, the NodePorts, the Bitnami
subcharts' images moved to `bitnamilegacy/*`, and every credential.

Volumes. The chart renders its own PersistentVolumes `octopus-<name>-pv` (spec from
`pv.<name>.storageType`, which may be any PersistentVolumeSource) and claims
`octopus-<name>-pvc` (`pvc.<name>.requests`, selecting their PV by the label `pv:
<name>-pv`, with no storageClassName) for minio, mysql, redis, logger and logstash
(inrystika/octopus deploy/charts/octopus templates/storage/pv.yaml, pvc.yaml): a program
creating claims of those names too would make Helm refuse to install. So the volumes are
the chart's, configured through those values. Because the claims name no class, the
DefaultStorageClass admission gives them the cluster's default class; the PVs get the same
`storageClassName` (through `storageType`, whose keys land in the PV's spec), so each claim
binds its static PV (a claim with a selector is never dynamically provisioned). Node-local
sources (hostPath, local) get a node affinity for the first Octopus node the same way.

Ingress. The bundled nginx-ingress-controller defaults to `hostNetwork: true` (ports 80/443
on the Octopus nodes, where ServiceLB serves the CSGHub gateway) and a LoadBalancer
Service: here it runs off the host network behind a NodePort Service
(`octopus.nodePorts.ingressHttp/ingressHttps`). sftpgo's NodePort is
`sftpgo.service.ports.sftp.nodePort` (chart default 30022, CSGHub's git port).

Kubernetes API versions. Chart 0.1.0 is reported to render API versions that Kubernetes
1.22 removed (K3s >= v1.22 serves none of them), typically:
  - `extensions/v1beta1` and `networking.k8s.io/v1beta1` Ingress (→ `networking.k8s.io/v1`),
  - `rbac.authorization.k8s.io/v1beta1` Role/ClusterRole/bindings (→ `.../v1`),
  - `apiextensions.k8s.io/v1beta1` CustomResourceDefinition (→ `.../v1`),
  - `admissionregistration.k8s.io/v1beta1` webhooks, `scheduling.k8s.io/v1beta1`
    PriorityClass, `storage.k8s.io/v1beta1`, `coordination.k8s.io/v1beta1` (→ `v1`),
and, on later versions, `policy/v1beta1` PodDisruptionBudget/PodSecurityPolicy,
`batch/v1beta1` CronJob (1.25), `autoscaling/v2beta2` (1.26). Helm refuses to install a
release that contains any of them ("no matches for kind ... in version ..."), so a
`pulumi up` would fail half-way. The program checks before that: when the chart is on
disk (`repo.localPath`, a directory or `.tgz`) and a `helm` binary is on PATH, it renders
the chart (`helm template`, with the values above and stand-ins for the secrets) and
fails with the list of objects whose API version the cluster's Kubernetes version no
longer serves; the same render refuses a chart that creates the claims this component
owns, and warns about fixed NodePorts the config does not set. Otherwise (chart only in
the repository, no helm, or an existing cluster of unknown version) it cannot check and
says so with a warning.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.secrets import given_or_generated, secret_leaves
from config import files
from config.fields import url_host
from config.octopus import Octopus as OctopusConfig

RELEASE_NAME = "octopus"
VOLUMES = ("minio", "mysql", "redis", "logger", "logstash")
PART_OF = {"app.kubernetes.io/part-of": "octopus", "app.kubernetes.io/managed-by": "pulumi"}
# Volume sources that live on one node: the PV is pinned to the first node of `octopus.nodes`.
NODE_LOCAL_SOURCES = ("hostPath", "local")

# Credential field → (generated length, chart value keys that carry it). Lengths respect
# the components' limits (old MinIO: access key <= 20, secret key <= 40 characters).
CREDENTIALS: dict[str, tuple[int, tuple[tuple[str, ...], ...]]] = {
    "taskset_admin_token": (32, (("taskset", "adminToken"),)),
    "minio_access_key": (
        20,
        (
            ("minio", "accessKey", "password"),
            ("minio", "gateway", "auth", "nas", "accessKey"),
            ("baseserver", "data", "minio", "base", "accessKeyID"),
        ),
    ),
    "minio_secret_key": (
        40,
        (
            ("minio", "secretKey", "password"),
            ("minio", "gateway", "auth", "nas", "secretKey"),
            ("baseserver", "data", "minio", "base", "secretAccessKey"),
        ),
    ),
    "mysql_root_password": (32, (("mysql", "auth", "rootPassword"),)),
    "redis_password": (
        32,
        (
            ("redis", "auth", "password"),
            ("baseserver", "data", "redis", "password"),
            ("openaiserver", "data", "redis", "password"),
            ("adminserver", "data", "redis", "password"),
        ),
    ),
    "harbor_password": (32, (("baseserver", "data", "harbor", "password"),)),
    "admin_password": (24, (("baseserver", "administrator", "password"),)),
    "grafana_password": (32, (("grafana", "env", "GF_SECURITY_ADMIN_PASSWORD"),)),
}

# `octopus.ingressPaths` key → the chart value keys of that path.
INGRESS_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "adminserver": (("ingress", "adminserverPath"),),
    "openaiserver": (("ingress", "openaiserverPath"),),
    "adminportal": (("ingress", "adminportalPath"),),
    "openaiportal": (("ingress", "openaiportalPath"),),
    "logger": (("ingress", "loggerHttpdPath"), ("logger", "httpd", "ingress", "path")),
    "minioWeb": (("ingress", "minioPath", "web"),),
    "minioApi": (("ingress", "minioPath", "api"),),
    "grafana": (("grafana", "ingress", "path"),),
}
DEFAULT_PATHS = {"openaiportal": "/", "grafana": "/grafana"}

# The Bitnami subcharts' images (docker.io/bitnami/* is gone; bitnamilegacy/* keeps the tags).
BITNAMI_IMAGES: dict[tuple[str, ...], str] = {
    ("minio", "image"): "minio",
    ("minio", "clientImage"): "minio-client",
    ("minio", "volumePermissions", "image"): "bitnami-shell",
    ("mysql", "image"): "mysql",
    ("mysql", "volumePermissions", "image"): "bitnami-shell",
    ("redis", "image"): "redis",
    ("redis", "volumePermissions", "image"): "bitnami-shell",
    ("nginx-ingress-controller", "image"): "nginx-ingress-controller",
    ("nginx-ingress-controller", "defaultBackend", "image"): "nginx",
}

# API versions Kubernetes no longer serves: (apiVersion, kind or "*") → (removed in, use instead).
REMOVED_APIS: dict[tuple[str, str], tuple[tuple[int, int], str]] = {
    ("extensions/v1beta1", "Ingress"): ((1, 22), "networking.k8s.io/v1"),
    ("extensions/v1beta1", "NetworkPolicy"): ((1, 16), "networking.k8s.io/v1"),
    ("extensions/v1beta1", "PodSecurityPolicy"): ((1, 16), "Pod Security Admission (no replacement object)"),
    ("extensions/v1beta1", "*"): ((1, 16), "apps/v1"),
    ("apps/v1beta1", "*"): ((1, 16), "apps/v1"),
    ("apps/v1beta2", "*"): ((1, 16), "apps/v1"),
    ("networking.k8s.io/v1beta1", "*"): ((1, 22), "networking.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "*"): ((1, 22), "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1alpha1", "*"): ((1, 22), "rbac.authorization.k8s.io/v1"),
    ("apiextensions.k8s.io/v1beta1", "*"): ((1, 22), "apiextensions.k8s.io/v1"),
    ("apiregistration.k8s.io/v1beta1", "*"): ((1, 22), "apiregistration.k8s.io/v1"),
    ("admissionregistration.k8s.io/v1beta1", "*"): ((1, 22), "admissionregistration.k8s.io/v1"),
    ("scheduling.k8s.io/v1beta1", "*"): ((1, 22), "scheduling.k8s.io/v1"),
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity"): ((1, 27), "storage.k8s.io/v1"),
    ("storage.k8s.io/v1beta1", "*"): ((1, 22), "storage.k8s.io/v1"),
    ("coordination.k8s.io/v1beta1", "*"): ((1, 22), "coordination.k8s.io/v1"),
    ("certificates.k8s.io/v1beta1", "*"): ((1, 22), "certificates.k8s.io/v1"),
    ("authentication.k8s.io/v1beta1", "*"): ((1, 22), "authentication.k8s.io/v1"),
    ("authorization.k8s.io/v1beta1", "*"): ((1, 22), "authorization.k8s.io/v1"),
    ("batch/v1beta1", "*"): ((1, 25), "batch/v1"),
    ("discovery.k8s.io/v1beta1", "*"): ((1, 25), "discovery.k8s.io/v1"),
    ("events.k8s.io/v1beta1", "*"): ((1, 25), "events.k8s.io/v1"),
    ("policy/v1beta1", "PodSecurityPolicy"): ((1, 25), "Pod Security Admission (no replacement object)"),
    ("policy/v1beta1", "*"): ((1, 25), "policy/v1"),
    ("node.k8s.io/v1beta1", "*"): ((1, 25), "node.k8s.io/v1"),
    ("autoscaling/v2beta1", "*"): ((1, 25), "autoscaling/v2"),
    ("autoscaling/v2beta2", "*"): ((1, 26), "autoscaling/v2"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "*"): ((1, 26), "flowcontrol.apiserver.k8s.io/v1"),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "*"): ((1, 29), "flowcontrol.apiserver.k8s.io/v1"),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "*"): ((1, 32), "flowcontrol.apiserver.k8s.io/v1"),
}


@dataclass(frozen=True)
class OctopusArgs:
    config: OctopusConfig
    provider: k8s.Provider
    base_dir: Path
    kubernetes_version: str  # "1.30" for the pinned K3s, "" when unknown (existing cluster)
    storage_class: str | None  # the cluster's default StorageClass (the chart's claims get it)
    # Where users reach Octopus' ingress (a node carrying Octopus, or a load balancer).
    # Default: the first node of `octopus.nodes` (its Kubernetes name).
    address: pulumi.Input[str] | None = None
    # The octopus config key held a `secure:` value: every pass-through value stays secret.
    values_secret: bool = False


class Octopus(pulumi.ComponentResource):
    url: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    grafana_url: pulumi.Output[str]

    def __init__(self, name: str, args: OctopusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:Octopus", name, None, opts)
        self._name = name
        self._args = args
        cfg = args.config
        chart = _chart_path(cfg, args.base_dir)
        self._check_chart(chart)

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=cfg.namespace, labels=PART_OF),
            opts=self._child(),
        )
        secrets = self._credentials()
        harbor = urlparse(cfg.repo.url)
        values = chart_values(
            cfg,
            secrets,
            harbor_host=harbor.netloc,
            harbor_ssl=harbor.scheme == "https",
            storage_class=args.storage_class,
            values_secret=args.values_secret,
        )
        repo = cfg.repo
        k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE_NAME,
            chart=repo.local_path if repo.local_path is not None else repo.chart,
            version=repo.version,
            repository_opts=None
            if repo.local_path is not None
            else k8s.helm.v3.RepositoryOptsArgs(
                repo=repo.url,
                ca_file=repo.ca_file,
                cert_file=repo.cert_file,
                key_file=repo.key_file,
                username=repo.username,
                password=None if repo.password is None else pulumi.Output.secret(repo.password.get_secret_value()),
            ),
            namespace=namespace.metadata.name,
            values=values,
            max_history=5,
            timeout=1200,
            # The release holds the data-bearing volumes and claims: protected.
            opts=self._child(protect=True, depends_on=[namespace]),
        )

        address: pulumi.Input[str] = args.address or (
            cfg.nodes[0] if cfg.nodes else f"{RELEASE_NAME}-nginx-ingress-controller.{cfg.namespace}.svc"
        )
        paths: dict[str, str] = {**DEFAULT_PATHS, **dict(cfg.ingress_paths.items())}
        base = pulumi.Output.from_input(address).apply(lambda a: f"http://{url_host(a)}:{cfg.node_ports.ingress_http}")
        self.url = pulumi.Output.concat(base, paths["openaiportal"])
        self.grafana_url = pulumi.Output.concat(base, paths["grafana"])
        self.admin_username = pulumi.Output.from_input(cfg.credentials.admin_user)
        self.admin_password = secrets["admin_password"]
        self.register_outputs(
            {
                "url": self.url,
                "adminUsername": self.admin_username,
                "adminPassword": self.admin_password,
                "grafanaUrl": self.grafana_url,
            }
        )

    def outputs(self) -> dict[str, Any]:
        """The stack outputs of this layer."""
        return {
            "octopusUrl": self.url,
            "octopusAdminUsername": self.admin_username,
            "octopusAdminPassword": self.admin_password,
            "octopusGrafanaUrl": self.grafana_url,
        }

    # -- resources --------------------------------------------------------------------

    def _child(self, **extra: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **extra)

    def _credentials(self) -> dict[str, pulumi.Output[str]]:
        given = self._args.config.credentials
        out: dict[str, pulumi.Output[str]] = {}
        for field, (length, _keys) in CREDENTIALS.items():
            value = getattr(given, field)
            if value is None and field == "harbor_password":
                pulumi.log.warn(
                    "octopus.credentials.harborPassword is not set: a password is generated, but Harbor only "
                    "accepts it once the Harbor account octopus.credentials.harborUser has it; set the account's "
                    "password there (as a secret) instead",
                    self,
                )
            out[field] = given_or_generated(f"{self._name}-{field.replace('_', '-')}", value, length, self)
        return out

    # -- the chart's API versions ---------------------------------------------------------

    def _check_chart(self, chart: Path | None) -> None:
        args = self._args
        if chart is None:
            pulumi.log.warn(
                f"octopus chart {args.config.repo.chart} {args.config.repo.version} comes from the repository: its "
                "Kubernetes API versions are not checked before install (chart 0.1.0 is reported to use API "
                "versions removed in Kubernetes 1.22); set octopus.repo.localPath to the chart .tgz to check them",
                self,
            )
            return
        helm = shutil.which("helm")
        if helm is None:
            pulumi.log.warn(
                f"no helm binary on PATH: the API versions of the octopus chart {chart} are not checked before install",
                self,
            )
            return
        placeholders = chart_values(
            args.config, Placeholders(), harbor_host="harbor.invalid", harbor_ssl=True, storage_class=args.storage_class
        )
        objects = render_chart(helm, chart, placeholders, args.config.namespace, args.kubernetes_version)
        problems = [*missing_claims(objects)]
        if args.kubernetes_version:
            problems += removed_api_problems(objects, args.kubernetes_version)
        else:
            pulumi.log.warn(
                "the cluster's Kubernetes version is unknown (existing cluster): the octopus chart's API versions "
                "are not checked",
                self,
            )
        if problems:
            lines = "\n".join(f"  - {p}" for p in problems)
            raise pulumi.RunError(
                f"ai-platform:octopus.repo: chart {chart} cannot be installed on this cluster "
                f"(Kubernetes {args.kubernetes_version or 'unknown'}):\n{lines}"
            )
        unset = unmanaged_node_ports(objects, args.config.node_ports.model_dump().values())
        if unset:
            pulumi.log.warn(
                "the octopus chart renders fixed NodePorts that octopus.nodePorts does not set (they may collide "
                f"with other layers): {', '.join(unset)}",
                self,
            )


class Placeholders(dict[str, str]):
    """Stand-ins for the credentials when the chart is only rendered to be checked."""

    def __missing__(self, key: str) -> str:
        return f"render-check-{key.replace('_', '-')}"


def claim_name(svc: str) -> str:
    return f"octopus-{svc}-pvc"


def _put(tree: dict[str, Any], path: Iterable[str], value: Any) -> None:
    *parents, last = path
    node = tree
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def storage_type(cfg: OctopusConfig, svc: str, storage_class: str | None) -> dict[str, Any]:
    """`pv.<svc>.storageType`: the configured source, and what the PV's spec needs besides so
    that the chart's claim binds it (its keys land in the PV's spec)."""
    volume = getattr(cfg.volumes, svc)
    out: dict[str, Any] = copy.deepcopy(volume.source)
    if storage_class:
        out["storageClassName"] = storage_class
    # Reserved for its claim: the PV controller binds a pre-bound PV at once, whatever the
    # class's binding mode. Without it, a WaitForFirstConsumer default class (K3s' local-path)
    # leaves the binding to the scheduler, which may see the claim before the PV (Helm creates
    # both at once) and ask for a provisioned volume instead, which never comes.
    out["claimRef"] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": cfg.namespace,
        "name": claim_name(svc),
    }
    if next(iter(volume.source)) in NODE_LOCAL_SOURCES and cfg.nodes:
        on_node = {"key": "kubernetes.io/hostname", "operator": "In", "values": [cfg.nodes[0]]}
        out["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [on_node]}]}}
    return out


def chart_values(
    cfg: OctopusConfig,
    secrets: Mapping[str, Any],
    *,
    harbor_host: str,
    harbor_ssl: bool,
    storage_class: str | None = None,
    values_secret: bool = False,
) -> dict[str, Any]:
    """The release values: seed 001's keys, secrets as given (Outputs, or stand-ins to render)."""
    selector = {cfg.node_selector_key: cfg.node_selector_value}
    values: dict[str, Any] = {"global": {"nodeSelector": selector}}
    if cfg.image_registry is not None:
        _put(values, ("global", "image", "repository", "address"), cfg.image_registry)
    if cfg.image_pathname is not None:
        _put(values, ("global", "image", "repository", "pathname"), cfg.image_pathname)
    ingress = values.setdefault("nginx-ingress-controller", {})
    ingress["nodeSelector"] = dict(selector)
    ingress["hostNetwork"] = False
    ingress["service"] = {
        "type": "NodePort",
        "nodePorts": {"http": cfg.node_ports.ingress_http, "https": cfg.node_ports.ingress_https},
    }
    for key, path in sorted(cfg.ingress_paths.items()):
        for value_key in INGRESS_PATHS[key]:
            _put(values, value_key, path)

    sizes = {svc: getattr(cfg.volumes, svc).size for svc in VOLUMES}
    for svc in VOLUMES:
        _put(values, ("pv", svc), {"requests": sizes[svc], "storageType": storage_type(cfg, svc, storage_class)})
        _put(values, ("pvc", svc, "requests"), sizes[svc])
    _put(values, ("minio", "persistence"), {"existingClaim": claim_name("minio"), "size": sizes["minio"]})
    _put(values, ("mysql", "primary", "persistence"), {"existingClaim": claim_name("mysql"), "size": sizes["mysql"]})
    _put(values, ("redis", "master", "persistence"), {"existingClaim": claim_name("redis"), "size": sizes["redis"]})

    _put(values, ("minio", "service", "nodePort"), cfg.node_ports.minio)
    _put(values, ("mysql", "primary", "service", "nodePort"), cfg.node_ports.mysql)
    _put(values, ("sftpgo", "service", "ports", "sftp", "nodePort"), cfg.node_ports.sftpgo)

    for image_key, image in BITNAMI_IMAGES.items():
        _put(values, (*image_key, "repository"), f"{cfg.bitnami_repository}/{image}")

    creds = cfg.credentials
    for field, (_length, value_keys) in CREDENTIALS.items():
        for value_key in value_keys:
            _put(values, value_key, secrets[field])
    _put(values, ("redis", "auth", "enabled"), True)
    _put(values, ("baseserver", "data", "harbor", "host"), harbor_host)
    _put(values, ("baseserver", "data", "harbor", "useSSL"), harbor_ssl)
    _put(values, ("baseserver", "data", "harbor", "username"), creds.harbor_user)
    _put(values, ("baseserver", "administrator", "username"), creds.admin_user)
    _put(values, ("grafana", "env", "GF_SECURITY_ADMIN_USER"), "admin")
    passthrough = secret_leaves(cfg.values, pulumi.Output.secret) if values_secret else cfg.values
    return _merge(values, passthrough)


def _chart_path(cfg: OctopusConfig, base_dir: Path) -> Path | None:
    """The local chart (airgap), checked to be the pinned version; None: the repository, or
    (in a review) a local chart that is not on this machine. Whether the files exist is
    config/files.py's check, before anything is registered."""
    local = cfg.repo.local_path
    if local is None:
        return None
    path = _resolve(base_dir, local)
    if not path.exists():
        if files.reviewing():
            pulumi.log.warn(
                f"octopus.repo.localPath {local}: {files.ABSENT}; its API versions are checked at pulumi up"
            )
            return None
        raise pulumi.RunError(f"ai-platform:octopus.repo.localPath: not found on the provisioner: {local}")
    found = _chart_version(path)
    if found != cfg.repo.version:
        raise pulumi.RunError(
            f"ai-platform:octopus.repo.localPath: {local} is chart version {found!r}, "
            f"but octopus.repo.version pins {cfg.repo.version!r}"
        )
    return path


def _resolve(base_dir: Path, given: str) -> Path:
    path = Path(given).expanduser()
    return path if path.is_absolute() else base_dir / path


def _chart_version(path: Path) -> str | None:
    text: str | None = None
    if path.is_dir():
        chart_yaml = path / "Chart.yaml"
        text = chart_yaml.read_text() if chart_yaml.is_file() else None
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            tops = (m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml"))
            member = next(tops, None)
            extracted = tar.extractfile(member) if member is not None else None
            text = extracted.read().decode() if extracted is not None else None
    if text is None:
        raise pulumi.RunError(f"ai-platform:octopus.repo.localPath: {path} is not a chart (directory or .tgz)")
    version = (yaml.safe_load(text) or {}).get("version")
    return None if version is None else str(version)


def render_chart(
    helm: str, chart: Path, values: Mapping[str, Any], namespace: str, kubernetes_version: str
) -> list[dict[str, Any]]:
    """`helm template` of the chart: every rendered object (CRDs included)."""
    with tempfile.TemporaryDirectory(prefix="octopus-render-") as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yaml.safe_dump(dict(values), sort_keys=True))
        cmd = [helm, "template", RELEASE_NAME, str(chart), "--namespace", namespace, "--include-crds"]
        cmd += ["--values", str(values_file)]
        if kubernetes_version:
            cmd += ["--kube-version", f"v{kubernetes_version}.0"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise pulumi.RunError(f"ai-platform:octopus.repo.localPath: `helm template` of {chart} failed:\n{proc.stderr}")
    return [d for d in yaml.safe_load_all(proc.stdout) if isinstance(d, dict) and d.get("kind")]


def _minor(version: str) -> tuple[int, int]:
    major, minor, *_ = version.lstrip("v").split(".")
    return int(major), int(minor)


def removed_api_problems(objects: Iterable[Mapping[str, Any]], kubernetes_version: str) -> list[str]:
    """Objects whose apiVersion the given Kubernetes version (e.g. "1.30") no longer serves."""
    cluster = _minor(kubernetes_version)
    problems = []
    for obj in objects:
        api, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        hit = REMOVED_APIS.get((api, kind)) or REMOVED_APIS.get((api, "*"))
        if hit is None or cluster < hit[0]:
            continue
        (major, minor), instead = hit
        name = (obj.get("metadata") or {}).get("name", "?")
        problems.append(f"{kind} {name}: {api} was removed in Kubernetes {major}.{minor} (use {instead})")
    return sorted(set(problems))


def missing_claims(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Claims the subcharts' `existingClaim` values name that the chart does not render."""
    rendered = {
        (obj.get("metadata") or {}).get("name") for obj in objects if obj.get("kind") == "PersistentVolumeClaim"
    }
    return sorted(
        f"the chart renders no PersistentVolumeClaim {claim_name(svc)}, which its {svc} subchart is told to use"
        for svc in ("minio", "mysql", "redis")
        if claim_name(svc) not in rendered
    )


def unmanaged_node_ports(objects: Iterable[Mapping[str, Any]], configured: Iterable[int]) -> list[str]:
    """Fixed NodePorts of rendered Services that the config does not set."""
    known = set(configured)
    found = []
    for obj in objects:
        if obj.get("kind") != "Service":
            continue
        for port in (obj.get("spec") or {}).get("ports") or []:
            node_port = port.get("nodePort")
            if isinstance(node_port, int) and node_port not in known:
                found.append(f"{(obj.get('metadata') or {}).get('name', '?')}:{node_port}")
    return sorted(set(found))
