"""The wiring: validated config → components, in dependency order → stack outputs.

The only place that knows how layers feed each other. Data flows one way: each
component takes typed args (and the cluster's provider) and exposes outputs that later
components take as inputs; `depends_on` only where no data flows.

    cluster ─ provider ─┬─ storage ───────────────┐
                        ├─ gateway (ns, TLS) ─────┤
                        ├─ knative (settings) ────┼─ csghub release ─┬─ knative pin (revision)
                        ├─ dataflow (values) ─────┘                  ├─ CoreDNS hosts
                        │                                            └─ registry secret ─ nodes' registries.yaml
                        ├─ octopus (node labels via the cluster)
                        └─ open-hydra (host dirs via the cluster's nodes)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi

from components import chart_schemas
from components import csghub as csghub_mod
from components import csghub_migration as migration
from components.csghub import CsghubArgs, CsghubLayer, Endpoints, endpoints
from components.csghub_lines import ChartLine, line_of, supported
from components.dataflow import DataflowArgs, DataflowLayer, bundled_values, merge, placeholder, standalone_values
from components.gateway import GatewayArgs, GatewayLayer, gateway_values
from components.gpu import GpuArgs, GpuLayer
from components.k3s import K3sCluster, K3sClusterArgs
from components.knative import KnativeArgs, KnativeLayer, manifest_file
from components.octopus import Octopus, OctopusArgs
from components.octopus import Placeholders as OctopusPlaceholders
from components.octopus import chart_values as octopus_chart_values
from components.openhydra import OpenHydra, OpenHydraArgs, mysql_host_pattern
from components.storage import StorageArgs, StorageLayer
from config import files
from config.cluster import Node
from config.fields import parse_taint
from config.load import ConfigError, Problem
from config.stack import OPENHYDRA_NODE_LABEL, StackConfig


@dataclass
class Platform:
    cluster: K3sCluster
    outputs: dict[str, Any] = field(default_factory=dict)


def node_labels(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """Labels platform layers need on named nodes, applied by the K3s component."""
    labels: dict[str, dict[str, str]] = {}
    octopus = cfg.octopus_on()
    if octopus is not None:
        for name in octopus.nodes:
            labels.setdefault(name, {})[octopus.node_selector_key] = octopus.node_selector_value
    if cfg.openhydra.enabled:
        names = [n.name for n in cfg.openhydra_nodes()] if cfg.provisioned else cfg.openhydra.nodes
        for name in names:
            labels.setdefault(name, {})[OPENHYDRA_NODE_LABEL] = "true"
    return labels


def csghub_endpoints(cfg: StackConfig) -> Endpoints:
    return endpoints(cfg.csghub, cfg.gateway)


def harbor_registry(cfg: StackConfig, base_dir: Path) -> dict[str, Any] | None:
    """Octopus' images come from the Harbor host: its CA and pull credentials for the nodes."""
    octopus = cfg.octopus_on()
    if octopus is None:
        return None
    repo = octopus.repo
    host = (octopus.image_registry or urlsplit(repo.url).netloc).split("/", 1)[0]
    entry: dict[str, Any] = {}
    if repo.username and repo.password is not None:
        entry["auth"] = {"username": repo.username, "password": repo.password.get_secret_value()}
    cas: dict[str, str] = {}
    if repo.ca_file is not None:
        cas[host] = files.read_text(base_dir, "octopus.repo.caFile", repo.ca_file)
    if not entry and not cas:
        return None
    return {"configs": {host: entry}, "cas": cas}


def default_storage_class(cfg: StackConfig) -> str | None:
    """The cluster's default StorageClass: the storage layer's, else K3s' own local-path
    (unless disabled); None when unknown (an existing cluster without the storage layer)."""
    if cfg.storage.enabled:
        return storage_class(cfg)
    if cfg.provisioned and "local-storage" not in cfg.cluster.k3s.disable:
        return "local-path"
    return None


def storage_class(cfg: StackConfig) -> str | None:
    if not cfg.storage.enabled:
        return None
    return "local-path" if cfg.storage.mode == "local-path" else cfg.storage.local_static.class_name


def local_path_provided(cfg: StackConfig) -> bool:
    """The cluster already runs the local-path provisioner: K3s ships it (unless disabled); on
    an existing cluster, the storage layer in local-path mode relies on its class being there."""
    if cfg.cluster.kubeconfig is None:
        return "local-storage" not in cfg.cluster.k3s.disable
    return cfg.storage.enabled and cfg.storage.mode == "local-path"


def default_address(cfg: StackConfig) -> str:
    """Where users reach NodePorts and the gateway when no address is configured."""
    if cfg.gateway.address:
        return cfg.gateway.address
    if cfg.cluster.servers:
        return cfg.cluster.servers[0].host
    return ""


def octopus_address(cfg: StackConfig) -> str | None:
    """Octopus' ingress answers on its NodePort on every node: the first Octopus node's address."""
    octopus = cfg.octopus_on()
    if octopus is None or not octopus.nodes:
        return None
    hosts = {n.name: n.host for n in cfg.nodes()}
    return hosts.get(octopus.nodes[0])


def tolerations_for(nodes: list[Node]) -> list[dict[str, str]]:
    """Tolerations of exactly the taints of NODES."""
    found: dict[tuple[str, str | None, str], dict[str, str]] = {}
    for node in nodes:
        for taint in node.taints:
            key, value, effect = parse_taint(taint)
            how = {"operator": "Equal", "value": value} if value is not None else {"operator": "Exists"}
            found[(key, value, effect)] = {"key": key, **how, "effect": effect}
    return [found[k] for k in sorted(found, key=str)]


def openhydra_placement(cfg: StackConfig) -> dict[str, Any]:
    """Where open-hydra's server may run is where its host directories are: the same node
    list (openhydra.nodes, default all) labels those nodes and gives the pods a selector for
    that label and tolerations for exactly those nodes' taints."""
    hydra = cfg.openhydra
    named = cfg.openhydra_nodes() if cfg.provisioned else []
    selector = {OPENHYDRA_NODE_LABEL: "true"} if (named or hydra.nodes) else None
    return {
        "node_selector": selector,
        "tolerations": tolerations_for(named),
        "host_dirs_made": cfg.provisioned,
        "mysql_root_host": hydra.mysql_root_host or mysql_host_pattern(cfg.cluster.k3s.cluster_cidr),
    }


def merge_registries(parts: list[Any]) -> pulumi.Output[dict[str, Any]]:
    """Registry entries several layers add (CSGHub's registry, Octopus' Harbor), as one."""

    def merged(values: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in values:
            for section, entries in part.items():
                out.setdefault(section, {}).update(entries)
        return out

    return pulumi.Output.secret(pulumi.Output.all(*parts).apply(merged))  # type: ignore[arg-type]


def _dataflow_bundled(cfg: StackConfig) -> bool:
    return cfg.dataflow.enabled and cfg.csghub.enabled


def chart_line(cfg: StackConfig) -> ChartLine:
    line = line_of(cfg.csghub.chart.version)
    assert line is not None, "validate_chart_values refuses an unknown chart line first"
    return line


def line_problems(cfg: StackConfig) -> list[Problem]:
    """The chart line of csghub.chart.version, and that line's refusals."""
    if not cfg.csghub.enabled:
        return []
    line = line_of(cfg.csghub.chart.version)
    if line is None:
        return [
            Problem(
                "csghub.chart.version",
                f"{cfg.csghub.chart.version!r} is not a supported CSGHub chart line (supported: {supported()})",
            )
        ]
    return [Problem(k, m) for k, m in line.problems(cfg)]


def line_change(
    cfg: StackConfig, line: ChartLine, provider: Any, namespace: pulumi.Input[str], base_dir: Path
) -> tuple[pulumi.Output[str], list[pulumi.Resource]]:
    """The guard the CSGHub Release waits for (this stack's last chart line, read back from
    its own outputs, must be this one unless the change is acknowledged) and, when it is,
    the migration's pre-steps."""
    me = pulumi.StackReference(
        "csghub-previous-line", stack_name=f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    )
    ack = cfg.csghub.migration.acknowledge
    guard = me.get_output("csghubChartLine").apply(lambda previous: migration.guard(previous, line.name, ack))
    if ack is None:
        return guard, []
    steps = migration.LineMigration(
        "csghub-migration",
        migration.MigrationArgs(
            config=cfg.csghub,
            provider=provider,
            namespace=namespace,
            crds_file=manifest_file(cfg.csghub.migration.envoy_gateway_crds, base_dir),
        ),
    )
    return guard, steps.steps


def csghub_validation_values(cfg: StackConfig, passthrough: bool = True) -> dict[str, Any]:
    """The CSGHub values as schema validation sees them (secrets as placeholders); without
    the pass-through `values` when PASSTHROUGH is False."""
    df = cfg.dataflow
    sc = storage_class(cfg)
    csghub = cfg.csghub if passthrough else cfg.csghub.model_copy(update={"values": {}})

    def dataflow(secret: Any) -> dict[str, Any]:
        return bundled_values(df, sc, cfg.csghub.services.mongo is not None, secret)

    return csghub_mod.validation_values(
        csghub,
        gateway_values(cfg.gateway, cfg.csghub.domain, cfg.csghub.public_domain),
        chart_line(cfg).runner_values(cfg.knative, cfg.csghub, sc, cfg.cluster.gpu.resource),
        dataflow if _dataflow_bundled(cfg) else None,
        sc,
        [s for s in ("loki", "prometheus") if s in csghub_endpoints(cfg).hosts],
        chart_line(cfg).services,
    )


def override_problems(cfg: StackConfig) -> list[Problem]:
    """Pass-through chart values may add keys, never replace what the program sets."""
    found: list[tuple[str, str, str]] = []
    if cfg.csghub.enabled and cfg.csghub.values:
        mine = csghub_validation_values(cfg, passthrough=False)
        found += [("csghub", k, o) for k, o in csghub_mod.owned_overrides(mine, cfg.csghub.values)]
    octopus = cfg.octopus_on()
    if octopus is not None and octopus.values:
        bare = octopus.model_copy(update={"values": {}})
        mine = octopus_chart_values(bare, OctopusPlaceholders(), harbor_host="h", harbor_ssl=True)
        found += [
            ("octopus", k, "octopus (typed keys)")
            for k, _ in csghub_mod.owned_overrides(mine, octopus.values, (("", ""),))
        ]
    if cfg.dataflow.enabled and not _dataflow_bundled(cfg) and cfg.dataflow.values:
        df = cfg.dataflow
        mine = standalone_values(df, storage_class(cfg), df.external_url or "", placeholder)
        found += [
            ("dataflow", k, "dataflow (typed keys)")
            for k, _ in csghub_mod.owned_overrides(mine, df.values, (("", ""),))
        ]
    return [
        Problem(f"{layer}.values.{key}", f"is set by the program from typed config: use {owner} instead")
        for layer, key, owner in found
    ]


def chart_value_problems(cfg: StackConfig, base_dir: Path) -> tuple[list[Problem], list[str]]:
    """Every release's values against its chart's values.schema.json (components/chart_schemas.py):
    (problems, notes). Secrets are placeholders here; nothing is registered."""
    problems: list[Problem] = override_problems(cfg)
    notes: list[str] = []

    def check(key: str, schema: chart_schemas.Schema | None, values: dict[str, Any], what: str) -> None:
        if schema is None:
            notes.append(f"{what}: no values.schema.json known for it; Helm checks its values at install")
            return
        problems.extend(Problem(key, f"chart value {e} (schema: {schema.origin})") for e in schema.errors(values))

    for key, chart_source in (("csghub.chart", cfg.csghub.chart), ("dataflow.chart", cfg.dataflow.chart)):
        local = chart_source.local_path
        if local is not None and not files.present(base_dir, local):
            notes.append(
                f"{key}.localPath {local}: {files.ABSENT}; it cannot be rendered here, so its values are checked "
                f"against the shipped schema of {chart_source.name} {chart_source.version}"
            )
    if cfg.csghub.enabled:
        chart = cfg.csghub.chart
        values = csghub_validation_values(cfg)
        check("csghub.values", chart_schemas.for_chart(chart, base_dir), values, f"chart {chart.name} {chart.version}")
        for sub in ("runner", "dataflow"):
            block = values.get(sub)
            if isinstance(block, dict) and block.get("enabled", True) is not False:
                sub_values = {k: v for k, v in block.items() if k != "enabled"}
                check("csghub.values", chart_schemas.shipped(sub, chart.version), sub_values, f"subchart {sub}")
    if cfg.dataflow.enabled and not _dataflow_bundled(cfg):
        df = cfg.dataflow
        values = merge(standalone_values(df, storage_class(cfg), df.external_url or "", placeholder), df.values)
        schema = chart_schemas.for_chart(df.chart, base_dir)
        check("dataflow.values", schema, values, f"chart {df.chart.name} {df.chart.version}")
    return problems, notes


def validate_chart_values(cfg: StackConfig, base_dir: Path) -> list[str]:
    """Raise ConfigError on an unsupported chart line, a line's refusal, or any chart value its
    schema rejects; return the notes (charts whose schema is unknown). Run by the program
    before anything is registered, and by `python -m stacks check` and `make plan`."""
    lines = line_problems(cfg)
    if lines:
        raise ConfigError(lines, "chart values")
    problems, notes = chart_value_problems(cfg, base_dir)
    if problems:
        raise ConfigError(problems, "chart values")
    return notes


def build(cfg: StackConfig, stack: str, base_dir: Path, secret_keys: frozenset[str] = frozenset()) -> Platform:
    """The platform from validated config. SECRET_KEYS: the top-level config keys that hold a
    secret (their pass-through chart values stay secret, leaf by leaf)."""
    for note in validate_chart_values(cfg, base_dir):
        pulumi.log.warn(note)
    cluster = K3sCluster(
        "k3s",
        K3sClusterArgs(
            cluster=cfg.cluster,
            stack=stack,
            base_dir=base_dir,
            extra_labels=node_labels(cfg),
            nfs_client=cfg.uses_nfs(),
        ),
    )
    provider = cluster.provider
    address = default_address(cfg)
    outputs: dict[str, Any] = {
        "kubeconfig": cluster.kubeconfig,
        "apiServer": cluster.api_server,
        "nodes": cluster.nodes,
    }
    urls: dict[str, Any] = {}
    credentials: dict[str, Any] = {}
    sc = storage_class(cfg)

    gpu = cfg.cluster.gpu
    slicing = cfg.openhydra.gpu_time_slicing
    wants_gpus = bool(cfg.gpu_nodes()) or (not cfg.provisioned and (cfg.csghub.gpu or slicing.enabled))
    if wants_gpus and gpu.plugin != "none":
        GpuLayer(
            "gpu",
            GpuArgs(
                config=gpu,
                provider=provider,
                tolerations=tolerations_for(cfg.gpu_nodes()),
                time_slicing=slicing.replicas if cfg.openhydra.enabled and slicing.enabled else None,
                runtime_class=cluster.runtime_class,
            ),
        )

    storage = None
    if cfg.storage.enabled:
        storage = StorageLayer("storage", StorageArgs(config=cfg.storage, provider=provider, nodes=cluster.targets()))
        outputs["storage"] = {"defaultClass": storage.default_class, "rwxClass": storage.rwx_class}

    knative = None
    if cfg.knative.enabled:
        knative = KnativeLayer(
            "knative",
            KnativeArgs(
                config=cfg.knative,
                provider=provider,
                base_dir=base_dir,
                installed_by_csghub=cfg.csghub.enabled,
                node_address=address,
                # 2.x by default serves Knative through the CSGHub gateway: no Kourier endpoint
                through_gateway=cfg.csghub.enabled and not chart_line(cfg).kourier_pinned(cfg.csghub),
            ),
        )
        outputs["knative"] = {"endpoint": knative.endpoint, "domain": knative.domain}

    dataflow = None
    if cfg.dataflow.enabled:
        portal = csghub_endpoints(cfg).url("portal") if cfg.csghub.enabled else None
        dataflow = DataflowLayer(
            "dataflow",
            DataflowArgs(
                config=cfg.dataflow,
                provider=provider,
                base_dir=base_dir,
                storage_class=sc,
                bundled=_dataflow_bundled(cfg),
                csghub_has_mongo=cfg.csghub.services.mongo is not None,
                csghub_url=portal,
                values_secret="dataflow" in secret_keys,
            ),
            opts=pulumi.ResourceOptions(depends_on=[storage] if storage else []),
        )
        urls["dataflow"] = dataflow.url

    node_registries: list[Any] = []
    harbor = harbor_registry(cfg, base_dir)
    if harbor is not None:
        node_registries.append(harbor)
    hosts: list[str] | None = None  # /etc/hosts lines for the nodes, when the domain has no DNS
    if cfg.csghub.enabled and knative is not None:
        ep = csghub_endpoints(cfg)
        gateway = GatewayLayer(
            "gateway",
            GatewayArgs(
                config=cfg.gateway,
                provider=provider,
                namespace=cfg.csghub.namespace,
                domain=cfg.csghub.domain,
                public_domain=cfg.csghub.public_domain,
                default_address=address,
            ),
        )
        line = chart_line(cfg)
        guard, before = line_change(cfg, line, provider, gateway.namespace, base_dir)
        csghub = CsghubLayer(
            "csghub",
            CsghubArgs(
                config=cfg.csghub,
                provider=provider,
                namespace=gateway.namespace,
                gateway_values=gateway_values(cfg.gateway, cfg.csghub.domain, cfg.csghub.public_domain),
                runner_values=line.runner_values(cfg.knative, cfg.csghub, sc, cfg.cluster.gpu.resource),
                storage_class=sc,
                gateway_address=cfg.dns_address() or gateway.address,
                endpoints=ep,
                values_secret="csghub" in secret_keys,
                line_guard=guard,
                before_release=before,
                services=line.services,
                dataflow_values=dataflow.csghub_values if dataflow is not None and _dataflow_bundled(cfg) else None,
                depends_on=[storage] if storage is not None else [],
            ),
        )
        outputs["csghubChartLine"] = line.name
        if line.kourier_pinned(cfg.csghub):
            knative.pin_after(csghub.revision, depends_on=[csghub.release])
        if cfg.csghub.node_registry:
            node_registries.append(csghub.node_registries)
        dns = cfg.dns_address()
        if cfg.csghub.coredns_hosts and dns:
            hosts = [f"{dns} {' '.join(ep.names())}"]
        for service in ep.hosts:
            urls[service] = ep.url(service)
        urls["registry"] = ep.url("portal")
        credentials["csghub"] = {"username": csghub.admin_username, "password": csghub.admin_password}
        for service, password in csghub.service_credentials.items():
            credentials[service] = {"username": service, "password": password}
        if cfg.csghub.node_registry and cfg.gateway.tls is None:
            pulumi.log.warn(
                f"csghub: the nodes log in to the CSGHub registry {ep.registry} over plain HTTP (gateway.tls is "
                "unset): its credentials cross the network in clear; configure gateway.tls for production"
            )
        outputs["gateway"] = {"address": gateway.address, "ports": gateway.ports}

    cluster.rollout_registries(merge_registries(node_registries) if node_registries else None, hosts)

    if cfg.octopus is not None and cfg.octopus.enabled:
        octopus = Octopus(
            "octopus",
            OctopusArgs(
                config=cfg.octopus,
                provider=provider,
                base_dir=base_dir,
                kubernetes_version=cluster.kubernetes_version,
                storage_class=default_storage_class(cfg),
                address=octopus_address(cfg),
                values_secret="octopus" in secret_keys,
            ),
            opts=pulumi.ResourceOptions(depends_on=[storage] if storage else []),
        )
        urls["octopus"] = octopus.url
        urls["grafana"] = octopus.grafana_url
        credentials["octopus"] = {"username": octopus.admin_username, "password": octopus.admin_password}

    if cfg.openhydra.enabled:
        hydra = OpenHydra(
            "openhydra",
            OpenHydraArgs(
                config=cfg.openhydra,
                provider=provider,
                base_dir=base_dir,
                nodes=cluster.targets(),
                local_path_provided=local_path_provided(cfg),
                gateway_address=address,
                kubeconfig=cluster.kubeconfig,
                gpu_resource=cfg.cluster.gpu.resource,
                **openhydra_placement(cfg),
            ),
            opts=pulumi.ResourceOptions(depends_on=[storage] if storage else []),
        )
        urls["openhydra"] = hydra.ui_url
        credentials["openhydra"] = {"username": hydra.admin_username, "password": hydra.admin_password}

    if urls:
        outputs["urls"] = urls
    if credentials:
        outputs["credentials"] = credentials
    return Platform(cluster=cluster, outputs=outputs)


def export(platform: Platform) -> None:
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
