"""K3sCluster: bare machines reachable over SSH → a K3s cluster and its Kubernetes provider.

Per node, what runs over SSH (each a `command.remote.Command`, script text visible in the
plan, secrets on stdin):

    [copy bundle]  airgap only: k3s binary, images tarball, install.sh (CopyToRemote)
    install        k3s-install.sh: settings files, install/upgrade, restart only on change
    ready          k3s-node-ready.sh on the first server: wait for the node to be Ready;
                   its delete drains the node and deletes its Node object
    registries     k3s-registries.sh: registries.yaml, restart only on change: servers one after
                   the other, then agents in lanes (one per 50 agents, or
                   cluster.k3s.rolloutConcurrency), each lane node after node
                   (on create only when other layers add entries; always on update)

Order comes from data and from the dependencies below, never from timing:
    airgap: the first server's bundle uploads first, the other nodes' after it;
    servers install one after the other (joins and upgrades one at a time);
    agents all wait for the last server only, so they install in parallel;
    each node's ready waits for its install; the kubeconfig waits for the first server;
    registries roll in a fixed order (servers, then agents), each after the previous one in
    its lane.
A destroy runs it backwards: drain + delete Node, then uninstall; agents before servers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml
from pulumi_command import remote

from components import kubeconfig as kc
from components import scripts
from components.gpu import GPU_LABEL, PRODUCT_LABEL
from config import files
from config.cluster import Cluster, Node

INSTALL_TYPE = "ai-platform:index:K3sCluster"
BUNDLE_DIR = "/var/tmp/ai-platform/k3s-airgap"
CN_INSTALLER = "https://rancher-mirror.rancher.cn/k3s/k3s-install.sh"
GPU_PACKAGES_DIR = "/var/tmp/ai-platform/gpu-packages"


def installer_url(version: str, mirror: str) -> str:
    """The online installer: K3s' install.sh at the pinned version's tag (get.k3s.io serves
    whatever is newest). The China mirror serves one unversioned copy: pin its sha256."""
    if mirror == "cn":
        return CN_INSTALLER
    return f"https://raw.githubusercontent.com/k3s-io/k3s/{version.replace('+', '%2B')}/install.sh"


@dataclass(frozen=True)
class NodePlan:
    """Everything the program decides about one node before any resource exists."""

    node: Node
    role: str  # server | agent
    index: int  # position among servers or agents
    first: bool
    user: str
    port: int
    config_yaml: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def sudo(self) -> bool:
        return self.user != "root"

    @property
    def address(self) -> str:
        """The address other nodes reach this one at."""
        return self.node.node_ip or self.node.host

    @property
    def kubelet_healthz(self) -> str:
        """HOST:PORT of the kubelet's /healthz (how an agent's scripts know K3s is back), from
        the kubelet defaults and any `--kubelet-arg=healthz-*` flag; "none" when it is off."""
        kubelet: dict[str, str] = {}
        for flag in self.node.extra_args:
            key, _, value = flag.partition("=")
            if key == "--kubelet-arg":
                name, _, v = value.partition("=")
                kubelet[name] = v
        port = kubelet.get("healthz-port", "10248")
        if port == "0":
            return "none"
        host = kubelet.get("healthz-bind-address", "127.0.0.1")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"{host}:{port}"

    @property
    def probe_args(self) -> dict[str, str]:
        """Script arguments for the readiness probe (agents only; a server probes its API)."""
        return {"healthz": self.kubelet_healthz} if self.role == "agent" else {}


def _flag_items(extra_args: list[str]) -> dict[str, Any]:
    """`--kubelet-arg=a=b` flags → config.yaml keys (repeatable keys become lists)."""
    out: dict[str, Any] = {}
    for flag in extra_args:
        key, sep, value = flag[2:].partition("=")
        if not sep:
            out[key] = True
            continue
        prev = out.get(key)
        if prev is None:
            out[key] = value
        else:
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
    return out


def node_config(cluster: Cluster, node: Node, role: str, first: bool, server_url: str | None) -> str:
    """The node's /etc/rancher/k3s/config.yaml (no secret in it: the token is a file)."""
    k3s = cluster.k3s
    cfg: dict[str, Any] = {
        "node-name": node.name,
        "token-file": "/etc/rancher/k3s/cluster-token",
    }
    if not first:
        cfg["server"] = server_url
    if node.node_ip:
        cfg["node-ip"] = node.node_ip
    if node.flannel_iface:
        cfg["flannel-iface"] = node.flannel_iface
    if node.taints:
        cfg["node-taint"] = list(node.taints)
    if role == "server":
        if first and len(cluster.servers) > 1:
            cfg["cluster-init"] = True
        cfg["write-kubeconfig-mode"] = "0600"
        if k3s.disable:
            cfg["disable"] = list(k3s.disable)
        sans = [*k3s.tls_san]
        for extra in (k3s.api_endpoint, *(s.host for s in cluster.servers)):
            if extra and extra not in sans:
                sans.append(extra)
        cfg["tls-san"] = sans
        if k3s.bind_address:
            cfg["bind-address"] = k3s.bind_address
        cfg["cluster-cidr"] = k3s.cluster_cidr
        cfg["service-cidr"] = k3s.service_cidr
    if k3s.docker:
        cfg["docker"] = True
    cfg.update(_flag_items(node.extra_args))
    header = "# /etc/rancher/k3s/config.yaml — written by ai-platform; edit the stack config instead.\n"
    return header + yaml.safe_dump(cfg, sort_keys=True)


def plan_nodes(cluster: Cluster, extra_labels: dict[str, dict[str, str]] | None = None) -> list[NodePlan]:
    extra_labels = extra_labels or {}
    first = cluster.servers[0]
    first_addr = first.node_ip or first.host
    server_url = kc.api_server_url(first_addr)
    plans = []
    for role, nodes in (("server", cluster.servers), ("agent", cluster.agents)):
        for i, node in enumerate(nodes):
            is_first = role == "server" and i == 0
            gpu_labels = {GPU_LABEL: "true"} if node.gpu else {}
            if node.gpu and node.gpu_model:
                gpu_labels[PRODUCT_LABEL] = node.gpu_model
            labels = {**gpu_labels, **node.labels, **extra_labels.get(node.name, {})}
            plans.append(
                NodePlan(
                    node=node,
                    role=role,
                    index=i,
                    first=is_first,
                    user=node.user or cluster.ssh.user,
                    port=node.port or cluster.ssh.port,
                    config_yaml=node_config(cluster, node, role, is_first, server_url),
                    labels=dict(sorted(labels.items())),
                )
            )
    return plans


CA_DIR = "/etc/rancher/k3s/ai-platform-ca"


def ca_path(host: str) -> str:
    """Where a registry's CA lands on the nodes (host[:port] → a file name)."""
    name = host.replace("[", "").replace("]", "").replace(":", "_")
    return f"{CA_DIR}/{name}.crt"


@dataclass(frozen=True)
class RegistryFiles:
    """What the registries step writes on a node: registries.yaml and the CA files it names."""

    yaml: str
    cas: dict[str, str]  # path on the node → PEM

    def certs_payload(self) -> str:
        """`path<TAB>base64(pem)` lines (the node scripts' `put_certs`)."""
        return "".join(f"{path}\t{scripts.b64(pem)}\n" for path, pem in sorted(self.cas.items()))


def registries_files(cluster: Cluster, base_dir: Path, extra: dict[str, Any] | None = None) -> RegistryFiles:
    """K3s registries.yaml from config, plus entries other layers add (the CSGHub registry,
    Octopus' Harbor): `mirrors`, `configs` (merged per host, the layer's keys last) and `cas`
    (host → PEM, written to the nodes and named as that host's `tls.ca_file`)."""
    regs = cluster.k3s.registries
    mirrors: dict[str, Any] = {}
    for host, m in sorted(regs.mirrors.items()):
        entry: dict[str, Any] = {"endpoint": list(m.endpoints)}
        if m.rewrite:
            entry["rewrite"] = dict(sorted(m.rewrite.items()))
        mirrors[host] = entry
    configs: dict[str, Any] = {}
    cas: dict[str, str] = {}
    for host, c in sorted(regs.configs.items()):
        entry = {}
        if c.auth:
            entry["auth"] = {"username": c.auth.username, "password": c.auth.password.get_secret_value()}
        if c.tls:
            tls: dict[str, Any] = {"insecure_skip_verify": c.tls.insecure_skip_verify}
            if c.tls.ca_file:
                cas[host] = files.read_text(
                    base_dir, f"cluster.k3s.registries.configs.{host}.tls.caFile", c.tls.ca_file
                )
            entry["tls"] = tls
        configs[host] = entry
    extra = extra or {}
    for host, entry in sorted((extra.get("mirrors") or {}).items()):
        mirrors[host] = entry
    for host, entry in sorted((extra.get("configs") or {}).items()):
        configs[host] = {**configs.get(host, {}), **entry}
    cas.update(extra.get("cas") or {})
    on_node = {}
    for host, pem in sorted(cas.items()):
        path = ca_path(host)
        configs.setdefault(host, {}).setdefault("tls", {})["ca_file"] = path
        on_node[path] = pem
    doc: dict[str, Any] = {}
    if mirrors:
        doc["mirrors"] = mirrors
    if configs:
        doc["configs"] = {h: configs[h] for h in sorted(configs)}
    header = "# /etc/rancher/k3s/registries.yaml — written by ai-platform.\n"
    return RegistryFiles(header + (yaml.safe_dump(doc, sort_keys=True) if doc else "{}\n"), on_node)


def registries_yaml(cluster: Cluster, extra: dict[str, Any] | None = None, base_dir: Path = Path(".")) -> str:
    return registries_files(cluster, base_dir, extra).yaml


@dataclass(frozen=True)
class NodeTarget:
    """How another layer runs a command on a node (e.g. to create host directories)."""

    name: str
    role: str
    connection: remote.ConnectionArgs
    sudo: bool
    gpu: bool
    # The node's install command: run after it, so K3s (and its directories) exist.
    installed: pulumi.Resource


@dataclass(frozen=True)
class K3sClusterArgs:
    cluster: Cluster
    stack: str
    base_dir: Path
    # Labels other layers need on named nodes (e.g. Octopus' nodeSelector label).
    extra_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # Other layers mount NFS volumes: every node needs the NFS client (checked at install).
    nfs_client: bool = False


class K3sCluster(pulumi.ComponentResource):
    """A K3s cluster over SSH — or, with `cluster.kubeconfig`, an existing cluster.

    Outputs: `kubeconfig` (secret), `api_server`, `nodes`, and `provider`, the one explicit
    Kubernetes provider every later layer uses.
    """

    kubeconfig: pulumi.Output[str]
    api_server: pulumi.Output[str]
    nodes: pulumi.Output[list[dict[str, Any]]]
    provider: k8s.Provider

    def __init__(self, name: str, args: K3sClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(INSTALL_TYPE, name, None, opts)
        self._name = name
        self._args = args
        cluster = args.cluster
        self._installs: dict[str, remote.Command] = {}
        self._ready: dict[str, remote.Command] = {}
        self._registries_done = False

        if cluster.kubeconfig is not None:
            self.plans: list[NodePlan] = []
            kubeconfig_text = pulumi.Output.secret(cluster.kubeconfig.get_secret_value())
            self.kubeconfig = kubeconfig_text
            self.api_server = pulumi.Output.from_input(_server_of(cluster.kubeconfig.get_secret_value()))
            self.nodes = pulumi.Output.from_input([])
        else:
            self.plans = plan_nodes(cluster, args.extra_labels)
            self._token = self._cluster_token()
            self._create_nodes()
            self.kubeconfig, self.api_server = self._read_kubeconfig()
            self.nodes = pulumi.Output.from_input(
                [
                    {
                        "name": p.node.name,
                        "address": p.node.host,
                        "role": p.role,
                        "labels": p.labels,
                        "gpu": p.node.gpu,
                        "gpuResource": cluster.gpu.resource if p.node.gpu and cluster.gpu.plugin != "none" else None,
                    }
                    for p in self.plans
                ]
            )

        self.provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=self.kubeconfig,
            # The cluster's identity, not its credentials: a rotated kubeconfig must not
            # replace every Kubernetes resource.
            cluster_identifier=f"{args.stack}-{name}",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._node_objects()
        self.register_outputs({"kubeconfig": self.kubeconfig, "apiServer": self.api_server, "nodes": self.nodes})

    # -- connection -------------------------------------------------------------------

    @functools.cached_property
    def _ssh_key(self) -> pulumi.Output[str] | None:
        """The nodes' private key, read once (a key file is read from disk here, not per command)."""
        ssh = self._args.cluster.ssh
        return _private_key(ssh.private_key, ssh.private_key_path, self._args.base_dir)

    @functools.cached_property
    def _proxy(self) -> remote.ProxyConnectionArgs | None:
        """The bastion hop, the same for every node."""
        ssh = self._args.cluster.ssh
        if ssh.bastion is None:
            return None
        b = ssh.bastion
        return remote.ProxyConnectionArgs(
            host=b.host,
            port=b.port,
            user=b.user,
            private_key=_secret(b.private_key) or self._ssh_key,
            password=_secret(b.password),
            host_key=b.host_key,
            dial_error_limit=ssh.dial_error_limit,
            per_dial_timeout=ssh.per_dial_timeout,
        )

    def connection(self, plan: NodePlan) -> remote.ConnectionArgs:
        ssh = self._args.cluster.ssh
        return remote.ConnectionArgs(
            host=plan.node.host,
            port=plan.port,
            user=plan.user,
            private_key=self._ssh_key,
            password=_secret(ssh.password),
            host_key=plan.node.host_key,
            proxy=self._proxy,
            dial_error_limit=ssh.dial_error_limit,
            per_dial_timeout=ssh.per_dial_timeout,
        )

    # -- resources --------------------------------------------------------------------

    def _cluster_token(self) -> pulumi.Output[str]:
        token = self._args.cluster.k3s.token
        if token is not None:
            return pulumi.Output.secret(token.get_secret_value())
        generated = random.RandomPassword(
            f"{self._name}-token",
            length=48,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        return pulumi.Output.secret(generated.result)  # type: ignore[arg-type]

    @functools.cached_property
    def _bundle_sources(self) -> tuple[list[tuple[str, pulumi.Asset | pulumi.Archive, str]], dict[str, str]]:
        """The airgap bundle's uploads (name suffix, source, remote path) and the install's
        arguments for them: the same for every node, so worked out (the directory read) once."""
        k3s = self._args.cluster.k3s
        if k3s.install != "airgap" or k3s.airgap is None:
            return [], {}
        airgap = k3s.airgap
        base = self._args.base_dir
        if airgap.dir is not None:
            # One SFTP session. pulumi-command copies a directory given as "dir/" *into*
            # remotePath (without the slash: to remotePath/<its name>), so the files land where
            # the three-file form puts them and an upgrade overwrites the old bundle.
            local = files.resolve(base, airgap.dir)
            images = files.airgap_images_name(base, "cluster.k3s.airgap.dir", airgap.dir)
            return [("bundle", pulumi.FileArchive(f"{local}/"), BUNDLE_DIR)], {"bundle": BUNDLE_DIR, "images": images}
        assert airgap.binary and airgap.images and airgap.install_script  # the model's rule
        parts = {"binary": ("k3s", airgap.binary), "images": (Path(airgap.images).name, airgap.images)}
        parts["installer"] = ("install.sh", airgap.install_script)
        sources: list[tuple[str, pulumi.Asset | pulumi.Archive, str]] = [
            (suffix, pulumi.FileAsset(str(files.resolve(base, local))), f"{BUNDLE_DIR}/{name}")
            for suffix, (name, local) in parts.items()
        ]
        return sources, {"bundle": BUNDLE_DIR, "images": Path(airgap.images).name}

    def _bundle(self, plan: NodePlan, after: list[pulumi.Resource]) -> tuple[list[pulumi.Resource], dict[str, str]]:
        sources, args = self._bundle_sources
        copies: list[pulumi.Resource] = [
            remote.CopyToRemote(
                f"{self._name}-{plan.node.name}-upload-{suffix}",
                connection=self.connection(plan),
                source=source,
                remote_path=remote_path,
                triggers=[plan.node.host],
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
            for suffix, source, remote_path in sources
        ]
        return copies, args

    def _gpu_node(self, plan: NodePlan, after: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """A GPU node's driver and container toolkit, before K3s (which then finds the runtime)."""
        if not plan.node.gpu:
            return []
        gpu = self._args.cluster.gpu
        airgap = self._args.cluster.k3s.install == "airgap"
        uploads: list[pulumi.Resource] = []
        args = {
            "node": plan.node.name,
            "driver": gpu.driver,
            "branch": gpu.driver_branch,
            "mode": "airgap" if airgap else "online",
            "role": plan.role,
        }
        if airgap and gpu.driver == "install" and gpu.airgap is not None:
            args["packages"] = GPU_PACKAGES_DIR
            for i, package in enumerate(gpu.airgap.packages):
                uploads.append(
                    remote.CopyToRemote(
                        f"{self._name}-{plan.node.name}-upload-gpu-{i}",
                        connection=self.connection(plan),
                        source=pulumi.FileAsset(str(files.resolve(self._args.base_dir, package))),
                        remote_path=f"{GPU_PACKAGES_DIR}/{Path(package).name}",
                        triggers=[plan.node.host],
                        opts=pulumi.ResourceOptions(parent=self, depends_on=after),
                    )
                )
        step = remote.Command(
            f"{self._name}-{plan.node.name}-gpu",
            connection=self.connection(plan),
            create=scripts.command_line("gpu-node.sh", args, plan.sudo),
            triggers=[plan.node.host],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*after, *uploads]),
        )
        return [step]

    def _installer_args(self) -> dict[str, str]:
        k3s = self._args.cluster.k3s
        if k3s.install != "online":
            return {}
        pinned = {"installer_sha256": k3s.installer_sha256} if k3s.installer_sha256 else {}
        return {"installer": installer_url(k3s.version, k3s.mirror), **pinned}

    def _create_nodes(self) -> None:
        k3s = self._args.cluster.k3s
        base = registries_files(self._args.cluster, self._args.base_dir)
        first = self.plans[0]
        previous_server: remote.Command | None = None
        last_server: remote.Command | None = None
        timeout = str(k3s.ready_timeout_seconds)

        # The first server's bundle goes up alone, then every other node's while it starts:
        # its install is on every node's path, and N uploads at once would share the link.
        first_copies: list[pulumi.Resource] = []
        for plan in self.plans:
            copies, bundle_args = self._bundle(plan, [] if plan.first else first_copies)
            if plan.first:
                first_copies = copies
            args = {
                "role": plan.role,
                "version": k3s.version,
                "install": k3s.install,
                "mirror": k3s.mirror,
                "gpu": "true" if plan.node.gpu else "false",
                **({"nfs": "true", "node": plan.node.name} if self._args.nfs_client else {}),
                "timeout": timeout,
                "config": scripts.b64(plan.config_yaml),
                **bundle_args,
                **self._installer_args(),
                **plan.probe_args,
            }
            stdin = self._token.apply(
                lambda token: scripts.payload({"token": token, "registries": base.yaml, "certs": base.certs_payload()})
            )
            depends: list[pulumi.Resource] = [*copies, *self._gpu_node(plan, copies)]
            if plan.role == "server" and previous_server is not None:
                depends.append(previous_server)
            if plan.role == "agent" and last_server is not None:
                depends.append(last_server)
            install = remote.Command(
                f"{self._name}-{plan.node.name}-install",
                connection=self.connection(plan),
                create=scripts.command_line("k3s-install.sh", args, plan.sudo),
                delete=scripts.command_line(
                    "k3s-uninstall.sh", {"role": plan.role, **({"bundle": BUNDLE_DIR} if copies else {})}, plan.sudo
                ),
                stdin=stdin,
                # A different machine or role is a different node: uninstall the old first.
                triggers=[plan.node.host, plan.role],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=depends,
                    delete_before_replace=True,
                    additional_secret_outputs=["stdin"],
                ),
            )
            self._installs[plan.node.name] = install
            if plan.role == "server":
                previous_server = install
                last_server = install

        first_install = self._installs[first.node.name]
        for plan in self.plans:
            install = self._installs[plan.node.name]
            # Every other node's ready waits for the first server's, so a destroy removes the
            # first server's Node last: removing it deletes its etcd member while the others'
            # removals still run through its API server (on the first server).
            after = [install] if install is first_install else [install, first_install, self._ready[first.node.name]]
            self._ready[plan.node.name] = remote.Command(
                f"{self._name}-{plan.node.name}-ready",
                connection=self.connection(first),
                create=scripts.command_line(
                    "k3s-node-ready.sh", {"node": plan.node.name, "timeout": timeout}, first.sudo
                ),
                delete=scripts.command_line(
                    "k3s-node-remove.sh", {"node": plan.node.name, "timeout": "300"}, first.sudo
                ),
                triggers=[plan.node.name, plan.node.host],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=after,
                    delete_before_replace=True,
                ),
            )

    def _read_kubeconfig(self) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        first = self.plans[0]
        endpoint = self._args.cluster.k3s.api_endpoint or first.node.host
        server = kc.api_server_url(endpoint)
        read = remote.Command(
            f"{self._name}-kubeconfig",
            connection=self.connection(first),
            create=scripts.command_line("k3s-kubeconfig.sh", {}, first.sudo),
            logging=remote.Logging.STDERR,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self._ready[first.node.name]],
                additional_secret_outputs=["stdout"],
            ),
        )
        context = f"{pulumi.get_project()}-{self._args.stack}"
        rewritten: pulumi.Output[str] = read.stdout.apply(lambda text: kc.rewrite(text, server, context))
        kubeconfig: pulumi.Output[str] = pulumi.Output.secret(rewritten)  # type: ignore[arg-type]
        return kubeconfig, pulumi.Output.from_input(server)

    def _node_objects(self) -> None:
        """Labels managed on the Node objects (server-side apply: removals are removed). On an
        existing cluster, the labels other layers need on the nodes they name."""
        labelled = [(p.node.name, p.labels, [self._ready[p.node.name]]) for p in self.plans]
        if not self.plans:
            labelled = [
                (name, dict(sorted(lbls.items())), []) for name, lbls in sorted(self._args.extra_labels.items())
            ]
        for node, labels, after in labelled:
            if not labels:
                continue
            k8s.core.v1.NodePatch(
                f"{self._name}-{node}-labels",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=node, labels=labels),
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=after),
            )
        # K3s deploys a RuntimeClass for every runtime it can find, `nvidia` included (its
        # packaged `runtimes` manifest): declaring one too would fail as AlreadyExists. Only
        # when that component is disabled does the program declare it.
        self.runtime_class: pulumi.Resource | None = None
        if any(p.node.gpu for p in self.plans) and "runtimes" in self._args.cluster.k3s.disable:
            self.runtime_class = k8s.node.v1.RuntimeClass(
                f"{self._name}-nvidia-runtimeclass",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="nvidia"),
                handler="nvidia",
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )

    def targets(self) -> list[NodeTarget]:
        """Every provisioned node, for layers that prepare something on the nodes."""
        return [
            NodeTarget(
                name=p.node.name,
                role=p.role,
                connection=self.connection(p),
                sudo=p.sudo,
                gpu=p.node.gpu,
                installed=self._ready[p.node.name],
            )
            for p in self.plans
        ]

    @property
    def kubernetes_version(self) -> str:
        """Kubernetes minor version of the pinned K3s (e.g. "1.30"), or "" for an existing cluster."""
        if self._args.cluster.kubeconfig is not None:
            return ""
        return ".".join(self._args.cluster.k3s.version.lstrip("v").split(".")[:2])

    def rollout_registries(
        self,
        extra: pulumi.Input[dict[str, Any]] | None = None,
        hosts: pulumi.Input[list[str]] | None = None,
    ) -> list[remote.Command]:
        """registries.yaml on every node, restarting K3s node after node when it changes.

        `extra` adds entries known only later (the CSGHub registry and its credentials,
        read from the release): the data dependency orders the rollout after it.
        `hosts` are /etc/hosts lines (platform hostnames when the domain has no DNS).
        Call once, after the layers that contribute entries exist.
        """
        if self._registries_done:
            raise RuntimeError("rollout_registries() called twice")
        self._registries_done = True
        if not self.plans:
            return []
        cluster = self._args.cluster
        base_dir = self._args.base_dir
        content = pulumi.Output.from_input(extra or {}).apply(lambda e: registries_files(cluster, base_dir, e))
        lines = pulumi.Output.from_input(hosts or []).apply(lambda ls: "".join(f"{line}\n" for line in ls))
        stdin = pulumi.Output.secret(pulumi.Output.all(content, lines)).apply(  # type: ignore[arg-type]
            lambda both: scripts.payload(
                {"registries": both[0].yaml, "certs": both[0].certs_payload(), "hosts": both[1]}
            )
        )
        timeout = str(cluster.k3s.ready_timeout_seconds)
        # A new node's install already wrote registries.yaml from the cluster config: unless
        # other layers add entries or /etc/hosts lines, creating this resource has nothing to
        # do, so it runs nothing (no SSH session, no chain of no-ops at bootstrap); any later
        # change runs the script (`update`), node after node.
        on_create = extra is not None or hosts is not None
        last_server: remote.Command | None = None
        lanes: list[remote.Command | None] = [None] * rollout_lanes(cluster)
        commands = []
        agent = 0
        for plan in self.plans:
            depends: list[pulumi.Resource] = [self._ready[plan.node.name]]
            if plan.role == "server":
                previous = last_server
            else:  # agents roll in lanes, each lane one node at a time, after the last server
                lane = agent % len(lanes)
                previous = lanes[lane] or last_server
                agent += 1
            if previous is not None:
                depends.append(previous)
            script = scripts.command_line(
                "k3s-registries.sh", {"role": plan.role, "timeout": timeout, **plan.probe_args}, plan.sudo
            )
            command = remote.Command(
                f"{self._name}-{plan.node.name}-registries",
                connection=self.connection(plan),
                create=script if on_create else None,
                update=script,
                stdin=stdin,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends, additional_secret_outputs=["stdin"]),
            )
            if plan.role == "server":
                last_server = command
            else:
                lanes[lane] = command
            commands.append(command)
        return commands


def rollout_lanes(cluster: Cluster) -> int:
    """How many agents restart at once in a registries rollout: cluster.k3s.rolloutConcurrency,
    else one lane per 50 agents (one at a time up to 50; a chain of a thousand would take a
    day and is deeper than the SDK's dependency walk can recurse). Servers: always one."""
    given = cluster.k3s.rollout_concurrency
    return max(1, given if given is not None else -(-len(cluster.agents) // 50))


def _secret(value: Any) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value.get_secret_value())


def _private_key(key: Any, key_path: str | None, base_dir: Path) -> pulumi.Output[str] | None:
    if key is not None:
        return pulumi.Output.secret(key.get_secret_value())
    if key_path is not None:
        return pulumi.Output.secret(files.read_text(base_dir, "cluster.ssh.privateKeyPath", key_path))
    return None


def _server_of(kubeconfig_text: str) -> str:
    """The API server of the kubeconfig's current context (config/cluster.py checked its shape)."""
    try:
        doc = yaml.safe_load(kubeconfig_text)
        contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
        wanted = (contexts.get(doc.get("current-context")) or {}).get("cluster")
        clusters = doc["clusters"]
        chosen = next((c for c in clusters if c["name"] == wanted), clusters[0])
        return str(chosen["cluster"]["server"])
    except Exception:  # noqa: BLE001 - any shape problem means "unknown"
        return "unknown"
