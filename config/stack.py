"""The whole `ai-platform:` namespace of one stack, and the rules that span its sections.

The root model mirrors `Pulumi.<stack>.yaml`: each top-level field is one config key
(`ai-platform:cluster`, `ai-platform:csghub`, ...). Field names are snake_case in Python
and camelCase in the stack file; messages and the generated schema use the camelCase
names. Every model forbids unknown keys; secrets are `SecretStr`.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field

from config.base import Model, to_camel
from config.cluster import Cluster, Node
from config.csghub import Csghub
from config.dataflow import Dataflow
from config.fields import parse_ip, parse_taint
from config.gateway import Gateway
from config.knative import Knative
from config.octopus import Octopus
from config.openhydra import Openhydra
from config.storage import Storage

# Namespaces no layer may be configured into: Kubernetes' and K3s' own, and those the
# charts and manifests the program deploys create for themselves.
RESERVED_NAMESPACES = {
    "default": "Kubernetes",
    "kube-system": "Kubernetes",
    "kube-public": "Kubernetes",
    "kube-node-lease": "Kubernetes",
    "knative-serving": "Knative Serving",
    "knative-operator": "the Knative Operator of the CSGHub runner",
    "kourier-system": "Kourier",
    "spaces": "the CSGHub runner's spaces",
    "mysql-operator": "open-hydra's mysql-operator",
    "gpu-operator": "the NVIDIA GPU operator",
}
# Where open-hydra's host directories exist; the server's pods are pinned there by it.
OPENHYDRA_NODE_LABEL = "openhydra.ai-platform.io/host-dirs"


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
        return [n for _, n in self.cluster.nodes()]

    @property
    def provisioned(self) -> bool:
        """Nodes over SSH (False: an existing cluster, kubeconfig given)."""
        return self.cluster.kubeconfig is None

    def octopus_on(self) -> Octopus | None:
        return self.octopus if self.octopus is not None and self.octopus.enabled else None

    def servicelb(self) -> bool:
        """K3s' ServiceLB serves LoadBalancer Services on the nodes' own ports."""
        return self.provisioned and "servicelb" not in self.cluster.k3s.disable

    def dns_address(self) -> str | None:
        """The IP CoreDNS and the nodes' /etc/hosts give the CSGHub names: the gateway's
        address, else the first server's (ServiceLB and NodePorts answer on every node)."""
        first = self.cluster.servers[:1]
        for candidate in (self.gateway.address, *(x for s in first for x in (s.host, s.node_ip))):
            if candidate and parse_ip(candidate) is not None:
                return candidate
        return None

    def openhydra_nodes(self) -> list[Node]:
        """The nodes with open-hydra's host directories (`openhydra.nodes`, default all)."""
        wanted = set(self.openhydra.nodes)
        return [n for n in self.nodes() if not wanted or n.name in wanted]

    def gpu_nodes(self) -> list[Node]:
        return [n for n in self.nodes() if n.gpu]

    def node_ports(self) -> list[tuple[str, int]]:
        """Every NodePort any enabled layer asks for, with the config key that asks."""
        ports: list[tuple[str, int]] = []
        if self.csghub.enabled and self.gateway.enabled and self.gateway.service_type == "NodePort":
            for key, port in self.gateway.node_ports.model_dump().items():
                ports.append((f"gateway.nodePorts.{key}", port))
        if self.knative.enabled and self.knative.kourier.http_node_port is not None:
            ports.append(("knative.kourier.httpNodePort", self.knative.kourier.http_node_port))
        octopus = self.octopus_on()
        if octopus is not None:
            for key, port in octopus.node_ports.model_dump().items():
                ports.append((f"octopus.nodePorts.{to_camel(key)}", port))
        if self.openhydra.enabled:
            ports.append(("openhydra.uiNodePort", self.openhydra.ui_node_port))
        return ports

    def host_ports(self) -> list[tuple[str, int]]:
        """Ports LoadBalancer Services take on every node through K3s' ServiceLB."""
        if not self.servicelb():
            return []
        ports: list[tuple[str, int]] = []
        if self.csghub.enabled and self.gateway.enabled and self.gateway.service_type == "LoadBalancer":
            ports += [("gateway.serviceType", p) for p in (80, 443, 22)]
        if self.knative.enabled and self.knative.kourier.service_type == "LoadBalancer":
            ports += [("knative.kourier.serviceType", p) for p in (80, 443)]
        return ports

    def uses_nfs(self) -> bool:
        """Some layer mounts NFS on the nodes (the NFS StorageClass, Octopus' NFS volumes)."""
        octopus = self.octopus_on()
        octopus_nfs = octopus is not None and any(
            "nfs" in getattr(octopus.volumes, v).source for v in ("minio", "mysql", "redis", "logger", "logstash")
        )
        return (self.storage.enabled and self.storage.nfs is not None) or octopus_nfs

    def namespaces(self) -> list[tuple[str, str]]:
        """(key, namespace) of every namespace an enabled layer creates."""
        out: list[tuple[str, str]] = []
        if self.csghub.enabled:
            out.append(("csghub.namespace", self.csghub.namespace))
        if self.dataflow.enabled and self.dataflow.standalone:
            out.append(("dataflow.namespace", self.dataflow.namespace))
        octopus = self.octopus_on()
        if octopus is not None:
            out.append(("octopus.namespace", octopus.namespace))
        if self.openhydra.enabled:
            out.append(("openhydra.namespace", self.openhydra.namespace))
        return out


def cross_field_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    """Rules that span sections. Returns (key path, message) pairs; empty when valid.
    (Whether the provisioner's files exist is config/files.py's part.)"""
    problems: list[tuple[str, str]] = []
    add = problems.append
    cl = cfg.cluster
    nodes = cl.nodes()
    ssh = cl.ssh

    if not cfg.provisioned:
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
        if ssh.private_key is None and ssh.private_key_path is None and ssh.password is None:
            add(("cluster.ssh", "no SSH credential: give privateKey, privateKeyPath or password"))
        if ssh.bastion is not None and ssh.bastion.host_key is None and not ssh.allow_unpinned_host_keys:
            add(
                (
                    "cluster.ssh.bastion.hostKey",
                    "missing: pin the bastion's SSH host key like the nodes' (see README) or set "
                    "cluster.ssh.allowUnpinnedHostKeys",
                )
            )
        problems += _network_problems(cfg)

    seen_names: dict[str, str] = {}
    seen_hosts: dict[tuple[str, int], str] = {}
    for key, node in nodes:
        if node.name in seen_names:
            add((f"{key}.name", f"duplicate node name {node.name!r} (also {seen_names[node.name]}.name)"))
        seen_names.setdefault(node.name, key)
        endpoint = (node.host, node.port or ssh.port)
        if endpoint in seen_hosts:
            add((f"{key}.host", f"duplicate address {node.host}:{endpoint[1]} (also {seen_hosts[endpoint]}.host)"))
        seen_hosts.setdefault(endpoint, key)
        if node.host_key is None and not ssh.allow_unpinned_host_keys:
            add(
                (
                    f"{key}.hostKey",
                    "missing: pin the node's SSH host key (see README) or set cluster.ssh.allowUnpinnedHostKeys",
                )
            )

    has_gpu = any(n.gpu for _, n in nodes)
    octopus = cfg.octopus_on()
    if cfg.provisioned:
        if cfg.csghub.enabled and cfg.csghub.gpu and not has_gpu:
            add(("csghub.gpu", "GPU workloads need at least one node with gpu: true"))
        if cfg.openhydra.enabled and cfg.openhydra.gpu_time_slicing.enabled and not has_gpu:
            add(("openhydra.gpuTimeSlicing.enabled", "GPU time slicing needs at least one node with gpu: true"))
        gpu = cl.gpu
        if has_gpu and gpu.driver == "install" and cl.k3s.install == "airgap" and gpu.airgap is None:
            add(
                (
                    "cluster.gpu.airgap",
                    "an airgap stack that installs the GPU driver needs its packages: set cluster.gpu.airgap.packages "
                    "(the .deb files), or cluster.gpu.driver: preinstalled",
                )
            )
        for layer_key, wanted in (
            ("octopus.nodes", octopus.nodes if octopus else []),
            ("openhydra.nodes", cfg.openhydra.nodes if cfg.openhydra.enabled else []),
        ):
            for i, name in enumerate(wanted):
                if name not in seen_names:
                    add((f"{layer_key}[{i}]", f"no node named {name!r} in cluster.servers or cluster.agents"))
        if octopus is not None and not octopus.nodes:
            add(("octopus.nodes", "name at least one node to carry Octopus (it gets the nodeSelector label)"))

    if octopus is not None and not cfg.provisioned and not octopus.nodes:
        for vol in ("minio", "mysql", "redis", "logger", "logstash"):
            if {"hostPath", "local"} & set(getattr(octopus.volumes, vol).source):
                add((f"octopus.volumes.{vol}.source", "a node-local volume needs octopus.nodes to pin it to"))

    if cfg.openhydra.enabled and cfg.openhydra.gpu_time_slicing.enabled and cl.gpu.plugin == "none":
        add(
            (
                "openhydra.gpuTimeSlicing.enabled",
                "time slicing configures what advertises the GPUs, and cluster.gpu.plugin is none: choose "
                "device-plugin or gpu-operator there, or turn time slicing off",
            )
        )
    problems += _port_problems(cfg)
    problems += _namespace_problems(cfg)
    problems += _layer_problems(cfg)
    return problems


def _network_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    k3s = cfg.cluster.k3s
    out: list[tuple[str, str]] = []
    pods = ipaddress.ip_network(k3s.cluster_cidr)
    services = ipaddress.ip_network(k3s.service_cidr)
    if pods.version == services.version and pods.overlaps(services):  # type: ignore[arg-type]
        out.append(("cluster.k3s.serviceCidr", f"{services} overlaps cluster.k3s.clusterCidr {pods}"))
    for key, node in cfg.cluster.nodes():
        for field, value in (("host", node.host), ("nodeIp", node.node_ip)):
            ip = parse_ip(value) if value else None
            for net, net_key in ((pods, "clusterCidr"), (services, "serviceCidr")):
                if ip is not None and ip.version == net.version and ip in net:
                    out.append((f"{key}.{field}", f"{ip} is inside cluster.k3s.{net_key} {net}"))
    return out


def _port_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    owners: dict[int, str] = {}
    for key, port in cfg.node_ports():  # each NodePort at most once across every layer
        if port in owners:
            out.append((key, f"NodePort {port} is also used by {owners[port]}"))
        owners.setdefault(port, key)
    hosts: dict[int, str] = {}
    for key, port in cfg.host_ports():  # ServiceLB: each node port at most once
        if port in hosts and hosts[port] != key:
            out.append(
                (key, f"LoadBalancer on K3s ServiceLB: port {port} on every node is also taken by {hosts[port]}")
            )
        hosts.setdefault(port, key)
    if 22 in hosts:
        ssh = cfg.cluster.ssh
        for key, node in cfg.cluster.nodes():
            if (node.port or ssh.port) == 22:
                where = f"{key}.port" if node.port else "cluster.ssh.port"
                out.append(
                    (
                        hosts[22],
                        f"LoadBalancer on K3s ServiceLB takes port 22 (git over SSH) on every node, where {where} "
                        "reaches the node's sshd: after the release every later node command would reach "
                        "gitlab-shell. Move the nodes' sshd to another port (cluster.ssh.port), use "
                        "gateway.serviceType NodePort, or put 'servicelb' in cluster.k3s.disable with an "
                        "external load balancer",
                    )
                )
                break
    return out


def _namespace_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    owners: dict[str, str] = {}
    for key, ns in cfg.namespaces():
        if key != "openhydra.namespace" and ns in RESERVED_NAMESPACES:
            out.append((key, f"namespace {ns!r} belongs to {RESERVED_NAMESPACES[ns]}; choose another"))
        if ns in owners:
            out.append((key, f"namespace {ns!r} is also {owners[ns]}'s: each layer needs its own"))
        owners.setdefault(ns, key)
    return out


def _layer_problems(cfg: StackConfig) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    add = out.append
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
    if cfg.csghub.enabled and cfg.csghub.coredns_hosts and cfg.dns_address() is None:
        add(
            (
                "csghub.corednsHosts",
                "CoreDNS and /etc/hosts need the gateway's IP: set gateway.address to an IP address "
                "(or turn corednsHosts off when the domain has DNS)",
            )
        )
    if cfg.storage.enabled and cfg.storage.mode == "local-static" and not cfg.provisioned:
        add(("storage.mode", "local-static prepares disks on the nodes over SSH: not possible on an existing cluster"))
    if cfg.openhydra.enabled and cfg.provisioned:
        chosen = cfg.openhydra_nodes()
        if chosen and all(_repels(n) for n in chosen) and not cfg.openhydra.nodes:
            add(
                (
                    "openhydra.nodes",
                    "every node repels pods (NoSchedule/NoExecute taints): name the nodes the open-hydra server may "
                    "run on (their taints are then tolerated)",
                )
            )
    return out


def _repels(node: Node) -> bool:
    return any(parse_taint(t)[2] in ("NoSchedule", "NoExecute") for t in node.taints)
