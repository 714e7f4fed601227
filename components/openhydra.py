"""open-hydra (seed 004): an ML teaching platform on Kubernetes, from pinned upstream manifests.

What the component declares, in dependency order (each step waits for the data or the
resources it needs, never for time):

    local-path       rancher local-path-provisioner v0.0.26 (ConfigFile) — unless the
                     cluster already has it (`local_path_provided`: K3s' own, or the
                     storage layer's); two provisioners of `rancher.io/local-path` fight
    mysql-operator   its CRDs (ConfigFile, on their own), then the operator (ConfigFile)
    MySQL            the root credentials Secret (the operator's `secretName` convention:
                     rootUser, rootHost, rootPassword — generated unless configured) and the
                     `InnoDBCluster` `mycluster` (protected), awaited until ONLINE
    host dirs        on each node (`openhydra.nodes`, default all): the dataset, course,
                     jupyter-lab and vscode directories, over SSH after the node's install
    server           Namespace `open-hydra` (the upstream file has none), then
                     `install-open-hydra.yaml` (ConfigFile, not awaited: its pod cannot start
                     before the next two patches), its ConfigMap `open-hydra-config` key
                     `config.yaml` replaced (GPU driver, host paths, auth switch, serverIP,
                     `dbType: mysql`, and the generated MySQL password instead of the
                     documented one), the Deployment patched (host paths mounted where the
                     config says, a config checksum so a config change rolls it)
    APIService       `v1.open-hydra-server.openhydra.io` patched with
                     `pulumi.com/waitFor: condition=Available`: the one wait that says the
                     aggregated API serves
    admin            password generated unless configured, after the APIService is
                     Available. Users are served by the aggregated API and stored in MySQL
                     (not a CRD). With `disableAuth: true` the admin is an `OpenHydraUser`
                     (role 1); that server takes POST/PUT but no server-side apply, so it goes
                     through a second provider with server-side apply off (`kubeconfig`
                     given). With authentication on (the default) the server refuses every
                     user request without an existing user's `Open-Hydra-Auth` header, so
                     the first admin cannot come through the API: a Job writes it into the
                     server's `user` table (re-run when the password changes)
    reverse proxy    `reverse-proxy.yaml` (ConfigFile); on K3s its nginx.conf and
                     certificate mount are moved from kubeadm's /etc/kubernetes/pki to K3s'
                     admin client certificate on a server node
    UI               ConfigMap `open-hydra-ui-config` (nginx.conf pointing at the proxy's
                     Service name), the UI manifest (ConfigFile), its Service's NodePort set
                     to `openhydra.uiNodePort` (upstream fixes 30001)
    GPU sharing      optional: configured on what advertises the GPUs (components/gpu.py:
                     the device plugin's config, or the GPU operator's devicePlugin config)

Security note (upstream design, seed 004 warns too): the UI reaches the Kubernetes API
through the reverse proxy, which holds a cluster-admin client certificate.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_command import remote

from components import scripts
from components.k3s import NodeTarget
from components.secrets import given_or_generated
from config.base import ManifestSource
from config.fields import url_host
from config.openhydra import Openhydra as OpenhydraConfig

NAMESPACE = "open-hydra"  # fixed by the upstream manifests
MYSQL_NAMESPACE = "mysql-operator"  # created by the operator manifest
MYSQL_CLUSTER = "mycluster"
MYSQL_SECRET = "mycluster-root"
MYSQL_HOST = f"{MYSQL_CLUSTER}-instances.{MYSQL_NAMESPACE}.svc"
# The server image of the pinned mysql-operator (8.0.36-2.1.2): already on the nodes for MySQL.
MYSQL_CLIENT_IMAGE = "container-registry.oracle.com/mysql/community-server:8.0.36"
ADMIN_DESCRIPTION = "platform administrator (ai-platform)"
SERVER_CONFIGMAP = "open-hydra-config"
SERVER_DEPLOYMENT = "open-hydra-server"
SERVER_CONTAINER = "open-hydra-api"
APISERVICE = "v1.open-hydra-server.openhydra.io"
USER_API = "open-hydra-server.openhydra.io/v1"
UI_CONFIGMAP = "open-hydra-ui-config"
UI_SERVICE = "open-hydra-ui"
PROXY_SERVICE = "reverse-proxy"
PROXY_CONFIGMAP = "nginx-conf"
PROXY_DEPLOYMENT = "reverse-proxy"
PROXY_CONTAINER = "my-container"  # the upstream manifest's names
PROXY_IMAGE = "docker.io/library/nginx:1.24.0-alpine"
PROXY_ACCOUNT = "open-hydra-reverse-proxy"
PROXY_AUTH_DIR = "/etc/nginx/ai-platform"
SERVER_SECRET = "open-hydra-server-config"
SERVER_SECRET_DIR = "/etc/open-hydra-secret"
TIME_SLICING_CONFIGMAP = "time-slicing-config-all"
CHECKSUM_ANNOTATION = "ai-platform/config-sha256"
# Rolls a Deployment when a Secret it reads changes: the Secret's resourceVersion (no digest
# of secret-bearing text, salted or not, ever leaves the Secret).
SECRET_VERSION_ANNOTATION = "ai-platform/secret-version"
FORCE = {"pulumi.com/patchForce": "true"}
TEMPLATES = Path(__file__).parent / "templates"
# Host directory key (script argument) → the config field that names it.
HOST_DIRS = {
    "dataset": "dataset_base_path",
    "course": "course_base_path",
    "jupyterlab": "jupyter_lab_host_base_dir",
    "vscode": "vscode_base_path",
}


@dataclass(frozen=True)
class OpenHydraArgs:
    config: OpenhydraConfig
    provider: k8s.Provider
    base_dir: Path
    nodes: list[NodeTarget]  # where host directories are created (empty: existing cluster)
    local_path_provided: bool  # the storage layer already runs K3s' local-path provisioner
    gateway_address: pulumi.Input[str]  # an address users reach NodePorts at
    # The cluster's kubeconfig (secret): for the provider of the aggregated API's objects,
    # with server-side apply off (open-hydra-server serves no apply patches).
    kubeconfig: pulumi.Input[str] | None = None
    # Where the server may run: the nodes with the host directories (their label), and
    # tolerations of those nodes' taints. None: anywhere (existing cluster, nodes unnamed).
    node_selector: dict[str, str] | None = None
    tolerations: list[dict[str, str]] = field(default_factory=list)
    # The host directories are made over SSH (provisioned nodes); otherwise the kubelet
    # creates them (DirectoryOrCreate).
    host_dirs_made: bool = True
    # MySQL root may log in from there only (MySQL host syntax): the pod network.
    mysql_root_host: str = "%"
    # defaultGpuDriver unless openhydra.server.gpuDriver names another (cluster.gpu.resource)
    gpu_resource: str = "nvidia.com/gpu"


class OpenHydra(pulumi.ComponentResource):
    ui_url: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: OpenHydraArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:OpenHydra", name, None, opts)
        self._name = name
        self._args = args
        cfg = args.config
        if cfg.namespace != NAMESPACE:
            raise pulumi.RunError(
                f"ai-platform:openhydra.namespace: the upstream manifests put every object in {NAMESPACE!r}; "
                f"got {cfg.namespace!r}"
            )

        storage: list[pulumi.Resource] = []
        if not args.local_path_provided:
            storage.append(self._manifest("local-path", cfg.manifests.local_path, "localPath"))
        crds = self._manifest("mysql-operator-crds", cfg.manifests.mysql_operator_crds, "mysqlOperatorCrds")
        operator = self._manifest("mysql-operator", cfg.manifests.mysql_operator, "mysqlOperator", depends_on=[crds])
        mysql_password = given_or_generated(f"{name}-mysql-root-password", cfg.mysql_root_password, 32, self)
        mysql = self._mysql(mysql_password, operator, storage)

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels={"app.kubernetes.io/part-of": "open-hydra"}),
            opts=self._child(),
        )
        host_dirs = self._host_dirs()
        apiservice = self._server(mysql_password, [namespace, mysql, *host_dirs])

        self.admin_username = pulumi.Output.from_input(cfg.admin.username)
        self.admin_password = given_or_generated(f"{name}-admin-password", cfg.admin.password, 24, self)
        self._admin_user(apiservice, mysql_password)

        proxy = self._reverse_proxy(namespace)
        self._ui(namespace, proxy)

        self.ui_url = pulumi.Output.from_input(args.gateway_address).apply(
            lambda a: f"http://{url_host(a)}:{cfg.ui_node_port}"
        )
        self.register_outputs(
            {"uiUrl": self.ui_url, "adminUsername": self.admin_username, "adminPassword": self.admin_password}
        )

    # -- helpers ----------------------------------------------------------------------

    def _child(self, **extra: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **extra)

    def _manifest(
        self,
        suffix: str,
        source: ManifestSource,
        key: str,
        depends_on: list[pulumi.Resource] | None = None,
        skip_await: bool = False,
    ) -> k8s.yaml.v2.ConfigFile:
        return k8s.yaml.v2.ConfigFile(
            f"{self._name}-{suffix}",
            file=manifest_file(source, self._args.base_dir, f"openhydra.manifests.{key}"),
            skip_await=skip_await or None,
            opts=self._child(depends_on=depends_on or []),
        )

    # -- MySQL ------------------------------------------------------------------------

    def _mysql(
        self, password: pulumi.Output[str], operator: pulumi.Resource, storage: list[pulumi.Resource]
    ) -> k8s.apiextensions.CustomResource:
        secret = k8s.core.v1.Secret(
            f"{self._name}-mysql-root",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=MYSQL_SECRET, namespace=MYSQL_NAMESPACE),
            type="Opaque",
            string_data=mysql_root_credentials(password, self._args.mysql_root_host),
            opts=self._child(depends_on=[operator]),
        )
        spec: dict[str, Any] = {
            "secretName": secret.metadata.name,
            "tlsUseSelfSigned": True,
            "instances": 1,
            "router": {"instances": 1},
            "imagePullPolicy": "IfNotPresent",
        }
        if storage:
            # The provisioner installed here is not the default StorageClass: name it.
            spec["datadirVolumeClaimTemplate"] = {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "local-path",
                "resources": {"requests": {"storage": "2Gi"}},
            }
        return k8s.apiextensions.CustomResource(
            f"{self._name}-mysql",
            api_version="mysql.oracle.com/v2",
            kind="InnoDBCluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=MYSQL_CLUSTER,
                namespace=MYSQL_NAMESPACE,
                annotations={
                    "pulumi.com/waitFor": "jsonpath={.status.cluster.status}=ONLINE",
                    "pulumi.com/timeoutSeconds": "1200",
                },
            ),
            spec=spec,
            opts=self._child(protect=True, depends_on=[operator, *storage]),
        )

    # -- nodes ------------------------------------------------------------------------

    def _host_dirs(self) -> list[remote.Command]:
        cfg = self._args.config
        wanted = set(cfg.nodes)
        dirs = {key: getattr(cfg.server, field) for key, field in HOST_DIRS.items()}
        commands = []
        for target in self._args.nodes:
            if wanted and target.name not in wanted:
                continue
            commands.append(
                remote.Command(
                    f"{self._name}-{target.name}-host-dirs",
                    connection=target.connection,
                    create=scripts.command_line("openhydra-host-dirs.sh", dirs, target.sudo),
                    delete=scripts.command_line("openhydra-host-dirs-remove.sh", dirs, target.sudo),
                    # Other paths: create the new directories, then remove the old ones if empty.
                    triggers=list(dirs.values()),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[target.installed]),
                )
            )
        return commands

    def _config_and_rollout(
        self,
        key: str,
        configmap: str,
        file: str,
        text: pulumi.Input[str],
        deployment: str,
        pod_spec: dict[str, Any],
        after: list[pulumi.Resource],
    ) -> tuple[pulumi.Resource, pulumi.Resource]:
        """Our content for a manifest's ConfigMap, and its Deployment patched with POD_SPEC and
        a checksum of that content (so the pods restart only when it changes)."""
        config = k8s.core.v1.ConfigMapPatch(
            f"{self._name}-{key}-config",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=configmap, namespace=NAMESPACE, annotations=FORCE),
            data={file: text},
            opts=self._child(depends_on=after),
        )
        checksum = pulumi.Output.from_input(text).apply(scripts.sha256)
        rollout = k8s.apps.v1.DeploymentPatch(
            f"{self._name}-{key}-deployment",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=deployment, namespace=NAMESPACE, annotations=FORCE),
            spec=cast(
                Any, {"template": {"metadata": {"annotations": {CHECKSUM_ANNOTATION: checksum}}, "spec": pod_spec}}
            ),
            opts=self._child(depends_on=[*after, config]),
        )
        return config, rollout

    # -- server -----------------------------------------------------------------------

    def _server(self, mysql_password: pulumi.Output[str], depends_on: list[pulumi.Resource]) -> pulumi.Resource:
        cfg = self._args.config
        args = self._args
        # Not awaited: the pod starts with the upstream config and only becomes ready once
        # the config and deployment patches are in; the APIService wait says when it serves.
        manifest = self._manifest(
            "server", cfg.manifests.open_hydra, "openHydra", depends_on=depends_on, skip_await=True
        )
        # The real config (with the MySQL password) in a Secret the server reads; the
        # manifest's ConfigMap keeps the same settings without the password, for readers.
        secret_text: pulumi.Output[str] = pulumi.Output.all(mysql_password, args.gateway_address).apply(  # secret
            lambda v: server_config(cfg, mysql_password=v[0], server_ip=v[1], gpu_resource=args.gpu_resource)
        )
        config_secret = k8s.core.v1.Secret(
            f"{self._name}-server-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SERVER_SECRET, namespace=NAMESPACE),
            type="Opaque",
            string_data={"config.yaml": secret_text},
            opts=self._child(depends_on=[manifest]),
        )
        readable = pulumi.Output.from_input(args.gateway_address).apply(
            lambda ip: server_config(
                cfg, mysql_password=f"(in Secret {SERVER_SECRET})", server_ip=ip, gpu_resource=args.gpu_resource
            )
        )
        config = k8s.core.v1.ConfigMapPatch(
            f"{self._name}-server-config-readable",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=SERVER_CONFIGMAP, namespace=NAMESPACE, annotations=FORCE),
            data={"config.yaml": readable},
            opts=self._child(depends_on=[manifest]),
        )
        server = cfg.server
        host_type = "Directory" if args.host_dirs_made else "DirectoryOrCreate"
        mounts = [("dataset", server.dataset_base_path), ("course", server.course_base_path)]
        pod_spec: dict[str, Any] = {
            "containers": [
                {
                    "name": SERVER_CONTAINER,
                    "command": [
                        "open-hydra-server",
                        "run",
                        "--open-hydra-server-config",
                        f"{SERVER_SECRET_DIR}/config.yaml",
                    ],
                    "volumeMounts": [
                        {"name": "ai-platform-config", "mountPath": SERVER_SECRET_DIR, "readOnly": True},
                        *(
                            {"name": vol, "mountPath": path, "mountPropagation": "Bidirectional"}
                            for vol, path in mounts
                        ),
                    ],
                }
            ],
            "volumes": [
                {"name": "ai-platform-config", "secret": {"secretName": SERVER_SECRET}},
                *({"name": vol, "hostPath": {"path": path, "type": host_type}} for vol, path in mounts),
            ],
        }
        if args.node_selector:
            pod_spec["nodeSelector"] = dict(args.node_selector)
        if args.tolerations:
            pod_spec["tolerations"] = [dict(t) for t in args.tolerations]
        version = config_secret.metadata.apply(lambda m: (m.resource_version if m else None) or "")
        deployment = k8s.apps.v1.DeploymentPatch(
            f"{self._name}-server-deployment",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=SERVER_DEPLOYMENT, namespace=NAMESPACE, annotations=FORCE),
            spec=cast(
                Any,
                {"template": {"metadata": {"annotations": {SECRET_VERSION_ANNOTATION: version}}, "spec": pod_spec}},
            ),
            opts=self._child(depends_on=[manifest, config, config_secret]),
        )
        return k8s.apiregistration.v1.APIServicePatch(
            f"{self._name}-apiservice",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=APISERVICE,
                annotations={"pulumi.com/waitFor": "condition=Available", "pulumi.com/timeoutSeconds": "900"},
            ),
            opts=self._child(depends_on=[manifest, config, deployment]),
        )

    def _admin_user(self, apiservice: pulumi.Resource, mysql_password: pulumi.Output[str]) -> None:
        if self._args.config.server.disable_auth:
            self._admin_through_the_api(apiservice)
        else:
            self._admin_bootstrap(apiservice, mysql_password)

    def _admin_through_the_api(self, apiservice: pulumi.Resource) -> None:
        """Auth off: the admin is an OpenHydraUser, created through the aggregated API."""
        args = self._args
        provider = args.provider
        if args.kubeconfig is not None:
            provider = k8s.Provider(
                f"{self._name}-aggregated-api-provider",
                kubeconfig=args.kubeconfig,
                enable_server_side_apply=False,
                cluster_identifier=f"{pulumi.get_stack()}-{self._name}-aggregated-api",
                opts=pulumi.ResourceOptions(parent=self),
            )
        else:
            pulumi.log.warn(
                "open-hydra: no kubeconfig given for the aggregated API's provider; the admin OpenHydraUser goes "
                "through the cluster's provider, whose server-side apply open-hydra-server does not serve",
                self,
            )
        k8s.apiextensions.CustomResource(
            f"{self._name}-admin",
            api_version=USER_API,
            kind="OpenHydraUser",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.config.admin.username),
            spec={
                "chineseName": args.config.admin.username,
                "description": ADMIN_DESCRIPTION,
                "password": self.admin_password,
                "role": 1,
            },
            # The server returns the password it stores (in plain text): keep it secret in state.
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[apiservice], additional_secret_outputs=["spec"]
            ),
        )

    def _admin_bootstrap(self, apiservice: pulumi.Resource, mysql_password: pulumi.Output[str]) -> None:
        """Auth on: the server refuses user requests without an existing user's credentials, so
        the first admin goes into its MySQL table, by a Job, once the server (and its tables) is up."""
        username = self._args.config.admin.username
        # Secret: both passwords are.
        env = pulumi.Output.all(mysql_password, self.admin_password).apply(
            lambda v: {
                "MYSQL_PWD": v[0],
                "ADMIN_USER_B64": base64.b64encode(username.encode()).decode(),
                "ADMIN_PASSWORD_B64": base64.b64encode(v[1].encode()).decode(),
            }
        )
        secret = k8s.core.v1.Secret(
            f"{self._name}-admin-bootstrap",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="open-hydra-admin-bootstrap", namespace=NAMESPACE),
            type="Opaque",
            string_data=pulumi.Output.secret(env),  # type: ignore[arg-type]
            opts=self._child(depends_on=[apiservice]),
        )
        # A new password changes the Secret, its resourceVersion the pod template: the Job is
        # replaced and runs again.
        checksum = secret.metadata.apply(lambda m: (m.resource_version if m else None) or "")
        script = (TEMPLATES / "openhydra-admin-bootstrap.sh").read_text()
        k8s.batch.v1.Job(
            f"{self._name}-admin-bootstrap",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="open-hydra-admin-bootstrap", namespace=NAMESPACE),
            spec=cast(
                Any,
                {
                    "backoffLimit": 10,
                    "template": {
                        "metadata": {"annotations": {SECRET_VERSION_ANNOTATION: checksum}},
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "containers": [
                                {
                                    "name": "bootstrap",
                                    "image": MYSQL_CLIENT_IMAGE,
                                    "command": ["sh", "-c", script],
                                    "env": [{"name": "MYSQL_HOST", "value": MYSQL_HOST}],
                                    "envFrom": [{"secretRef": {"name": secret.metadata.name}}],
                                }
                            ],
                        },
                    },
                },
            ),
            opts=self._child(depends_on=[apiservice, secret]),
        )

    # -- reverse proxy and UI ---------------------------------------------------------

    def _reverse_proxy(self, namespace: pulumi.Resource) -> list[pulumi.Resource]:
        """The UI's way to the Kubernetes API. Upstream mounts kubeadm's /etc/kubernetes/pki
        (every key of the control plane) and does not verify the API server. Here: a
        ServiceAccount of its own with a token Secret, whose token an init container turns
        into the Authorization header nginx sends, and whose CA nginx verifies the API
        server with. No host path, no node selector."""
        cfg = self._args.config
        manifest = self._manifest("reverse-proxy", cfg.manifests.reverse_proxy, "reverseProxy", depends_on=[namespace])
        account = k8s.core.v1.ServiceAccount(
            f"{self._name}-reverse-proxy-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PROXY_ACCOUNT, namespace=NAMESPACE),
            automount_service_account_token=False,
            opts=self._child(depends_on=[namespace]),
        )
        token = k8s.core.v1.Secret(
            f"{self._name}-reverse-proxy-token",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{PROXY_ACCOUNT}-token",
                namespace=NAMESPACE,
                annotations={"kubernetes.io/service-account.name": PROXY_ACCOUNT},
            ),
            type="kubernetes.io/service-account-token",
            opts=self._child(depends_on=[account], ignore_changes=["data"]),
        )
        # The upstream design: the UI acts on the cluster as an administrator (seed 004 warns).
        binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{self._name}-reverse-proxy-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PROXY_ACCOUNT),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"
            ),
            subjects=[k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=PROXY_ACCOUNT, namespace=NAMESPACE)],
            opts=self._child(depends_on=[account]),
        )
        conf = (TEMPLATES / "openhydra-reverse-proxy-nginx.conf").read_text().replace("{auth_dir}", PROXY_AUTH_DIR)
        header = 'proxy_set_header Authorization "Bearer %s";\\n'
        init = (
            f"printf '{header}' \"$(cat /token/token)\" > {PROXY_AUTH_DIR}/auth.conf"
            f" && cp /token/ca.crt {PROXY_AUTH_DIR}/ca.crt"
        )
        auth_mount = {"name": "ai-platform-auth", "mountPath": PROXY_AUTH_DIR}
        pod_spec = {
            "serviceAccountName": PROXY_ACCOUNT,
            "initContainers": [
                {
                    "name": "api-credentials",
                    "image": PROXY_IMAGE,
                    "command": ["sh", "-c", init],
                    "volumeMounts": [
                        auth_mount,
                        {"name": "ai-platform-token", "mountPath": "/token", "readOnly": True},
                    ],
                }
            ],
            "containers": [{"name": PROXY_CONTAINER, "volumeMounts": [{**auth_mount, "readOnly": True}]}],
            "volumes": [
                {"name": "ai-platform-auth", "emptyDir": {"medium": "Memory"}},
                {
                    "name": "ai-platform-token",
                    "secret": {
                        "secretName": f"{PROXY_ACCOUNT}-token",
                        "items": [{"key": "token", "path": "token"}, {"key": "ca.crt", "path": "ca.crt"}],
                    },
                },
            ],
        }
        config, deployment = self._config_and_rollout(
            "reverse-proxy",
            PROXY_CONFIGMAP,
            "nginx.conf",
            conf,
            PROXY_DEPLOYMENT,
            pod_spec,
            after=[manifest, token, binding],
        )
        return [manifest, config, deployment]

    def _ui(self, namespace: pulumi.Resource, proxy: list[pulumi.Resource]) -> None:
        cfg = self._args.config
        conf = (TEMPLATES / "openhydra-ui-nginx.conf").read_text()
        conf = conf.replace("{address}", f"{PROXY_SERVICE}.{NAMESPACE}.svc.cluster.local")
        ui_config = k8s.core.v1.ConfigMap(
            f"{self._name}-ui-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=UI_CONFIGMAP, namespace=NAMESPACE),
            data={"nginx.conf": conf},
            opts=self._child(depends_on=[namespace]),
        )
        manifest = self._manifest("ui", cfg.manifests.ui, "ui", depends_on=[ui_config, *proxy])
        k8s.core.v1.ServicePatch(
            f"{self._name}-ui-service",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=UI_SERVICE, namespace=NAMESPACE, annotations=FORCE),
            spec=k8s.core.v1.ServiceSpecPatchArgs(
                type="NodePort",
                ports=[
                    k8s.core.v1.ServicePortPatchArgs(
                        port=80, protocol="TCP", target_port=80, node_port=cfg.ui_node_port
                    )
                ],
            ),
            opts=self._child(depends_on=[manifest]),
        )


def manifest_file(source: ManifestSource, base_dir: Path, key: str) -> str:
    """The pinned URL, or the local copy (airgap) checked to exist, as the config names it."""
    if source.local_path is None:
        return source.url
    # config/files.py has refused an absent file before anything was registered (or, in a
    # review, recorded it as absent here).
    return source.local_path


def mysql_root_credentials(password: pulumi.Input[str], root_host: str) -> dict[str, pulumi.Input[str]]:
    """The mysql-operator's root Secret (its `secretName` convention); root may log in from
    ROOT_HOST only (the pod network, not '%')."""
    return {"rootUser": "root", "rootHost": root_host, "rootPassword": password}


def mysql_host_pattern(cidr: str) -> str:
    """A CIDR as MySQL's `address/netmask` host syntax (IPv4), or '%' for IPv6 networks."""
    import ipaddress

    net = ipaddress.ip_network(cidr)
    if net.version != 4:
        return "%"
    return f"{net.network_address}/{net.netmask}"


def server_config(
    cfg: OpenhydraConfig, *, mysql_password: str, server_ip: str, gpu_resource: str = "nvidia.com/gpu"
) -> str:
    """open-hydra-server's config.yaml (the upstream keys; the secrets and paths from config)."""
    server = cfg.server
    doc = {
        "podAllocatableLimit": -1,
        "defaultCpuPerDevice": 2000,
        "defaultRamPerDevice": 8192,
        "defaultGpuPerDevice": 0,
        "datasetBasePath": server.dataset_base_path,
        "courseBasePath": server.course_base_path,
        "jupyterLabHostBaseDir": server.jupyter_lab_host_base_dir,
        "vscodeBasePath": server.vscode_base_path,
        "defaultGpuDriver": server.gpu_driver or gpu_resource,
        "serverIP": server_ip,
        "patchResourceNotRelease": True,
        "disableAuth": server.disable_auth,
        "dbType": "mysql",
        "mysqlConfig": {
            "address": MYSQL_HOST,
            "port": 3306,
            "username": "root",
            "password": mysql_password,
            "databaseName": "openhydra",
            "protocol": "tcp",
        },
        "leaderElection": {
            "leaderElect": False,
            "leaseDuration": "30s",
            "renewDeadline": "15s",
            "retryPeriod": "5s",
            "resourceLock": "endpointsleases",
            "resourceName": "open-hydra-api-leader-lock",
            "resourceNamespace": NAMESPACE,
        },
    }
    return yaml.safe_dump(doc, sort_keys=True)
