"""open-hydra under mocks: MySQL, the server and its config, the APIService wait, the admin
user, host directories on the nodes, reverse proxy and UI, GPU time slicing."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.openhydra import mysql_host_pattern, mysql_root_credentials, server_config
from config.openhydra import Openhydra
from stacks import mockrun, rules
from stacks.mockrun import SECRET, Recording
from tests.conftest import ROOT, cluster_only, run_program, with_

CMD = "command:remote:Command"
CONFIGFILE = "kubernetes:yaml/v2:ConfigFile"
APISERVICE = "kubernetes:apiregistration.k8s.io/v1:APIServicePatch"
USER = "kubernetes:open-hydra-server.openhydra.io/v1:OpenHydraUser"
INNODB = "kubernetes:mysql.oracle.com/v2:InnoDBCluster"
K3S_PROVIDER = "pulumi:providers:kubernetes::k3s-provider"
PARENT = "ai-platform:index:OpenHydra::openhydra"
PASSWORD = "random:index/randomPassword:RandomPassword"


def hydra(**extra: Any) -> dict[str, Any]:
    raw = cluster_only()
    raw["openhydra"] = {"enabled": True, **extra}
    return raw


def ours(rec: Recording) -> list[mockrun.Declared]:
    return [d for d in rec.declared if d.parent == PARENT]


def command_args(d: mockrun.Declared, field: str = "create") -> tuple[str, dict[str, str], bool]:
    words = shlex.split(d.inputs[field])
    sudo = words[:2] == ["sudo", "-n"]
    words = words[2:] if sudo else words
    return words[3], dict(w.split("=", 1) for w in words[4:]), sudo


# -- MySQL ------------------------------------------------------------------------------------


def test_mysql_operator_crds_first_then_operator_then_a_protected_cluster() -> None:
    rec = run_program(hydra())
    crds = rec.get("openhydra-mysql-operator-crds", CONFIGFILE)
    operator = rec.get("openhydra-mysql-operator", CONFIGFILE)
    assert crds.inputs["file"].endswith("/deploy/deploy-crds.yaml")
    assert operator.inputs["file"].endswith("/deploy/deploy-operator.yaml")
    assert f"{CONFIGFILE}::openhydra-mysql-operator-crds" in operator.dependencies
    assert crds.dependencies == []
    cluster = rec.get("openhydra-mysql", INNODB)
    assert cluster.protect
    assert cluster.provider == K3S_PROVIDER
    assert cluster.inputs["apiVersion"] == "mysql.oracle.com/v2"
    assert cluster.inputs["metadata"]["name"] == "mycluster"
    assert cluster.inputs["metadata"]["namespace"] == "mysql-operator"
    assert cluster.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "jsonpath={.status.cluster.status}=ONLINE"
    assert cluster.inputs["spec"]["secretName"] == "mycluster-root"
    assert f"{CONFIGFILE}::openhydra-mysql-operator" in cluster.dependencies
    secret = rec.get("openhydra-mysql-root", "kubernetes:core/v1:Secret")
    assert secret.inputs["stringData"] == SECRET  # the SDK keeps a Secret's stringData secret as a whole
    assert secret.inputs["metadata"] == {"name": "mycluster-root", "namespace": "mysql-operator"}
    # root may log in from the pod network only (cluster.k3s.clusterCidr), not from anywhere
    assert mysql_root_credentials("pw", "10.42.0.0/255.255.0.0")["rootHost"] == "10.42.0.0/255.255.0.0"
    assert mysql_host_pattern("10.42.0.0/16") == "10.42.0.0/255.255.0.0"
    assert "kubernetes:core/v1:Secret::openhydra-mysql-root" in cluster.dependencies


def test_local_path_provisioner_only_when_the_cluster_has_none() -> None:
    rec = run_program(hydra())  # K3s ships local-path: not installed again
    assert [d for d in rec.by_type(CONFIGFILE) if d.name == "openhydra-local-path"] == []
    assert "datadirVolumeClaimTemplate" not in rec.get("openhydra-mysql", INNODB).inputs["spec"]

    raw = with_(hydra(), "cluster.k3s.disable", ["traefik", "local-storage"])
    rec = run_program(raw)
    local_path = rec.get("openhydra-local-path", CONFIGFILE)
    assert local_path.inputs["file"] == (
        "https://raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.26/deploy/local-path-storage.yaml"
    )
    cluster = rec.get("openhydra-mysql", INNODB)
    assert cluster.inputs["spec"]["datadirVolumeClaimTemplate"]["storageClassName"] == "local-path"
    assert f"{CONFIGFILE}::openhydra-local-path" in cluster.dependencies


def test_existing_cluster_whose_local_path_class_the_storage_layer_patches_gets_no_second_provisioner() -> None:
    kubeconfig = "apiVersion: v1\nkind: Config\nclusters: [{name: a, cluster: {server: 'https://k:6443'}}]\n"
    raw = hydra()
    raw["cluster"] = {"kubeconfig": kubeconfig}
    raw["storage"] = {"mode": "local-path"}
    rec = run_program(raw)
    assert [d for d in rec.by_type(CONFIGFILE) if d.name == "openhydra-local-path"] == []
    raw["storage"] = {"enabled": False}  # nothing says the cluster has it: installed
    assert rec_has_local_path(run_program(raw))


def rec_has_local_path(rec: Recording) -> bool:
    return any(d.name == "openhydra-local-path" for d in rec.by_type(CONFIGFILE))


# -- server -----------------------------------------------------------------------------------


def test_server_waits_for_its_namespace_mysql_and_host_directories() -> None:
    rec = run_program(hydra())
    ns = rec.get("openhydra-namespace", "kubernetes:core/v1:Namespace")
    assert ns.inputs["metadata"]["name"] == "open-hydra"
    server = rec.get("openhydra-server", CONFIGFILE)
    assert server.inputs["file"].endswith("/deploy/install-open-hydra.yaml")
    assert server.inputs["skipAwait"] is True
    for dep in (
        "kubernetes:core/v1:Namespace::openhydra-namespace",
        f"{INNODB}::openhydra-mysql",
        f"{CMD}::openhydra-s0-host-dirs",
        f"{CMD}::openhydra-a0-host-dirs",
        f"{CMD}::openhydra-a1-host-dirs",
    ):
        assert dep in server.dependencies, dep


def test_server_config_with_the_password_is_a_secret_the_configmap_keeps_none() -> None:
    rec = run_program(hydra(mysqlRootPassword="mysql-pw-marker"))
    secret = rec.get("openhydra-server-config", "kubernetes:core/v1:Secret")
    assert secret.inputs["metadata"] == {"name": "open-hydra-server-config", "namespace": "open-hydra"}
    assert secret.inputs["stringData"] == SECRET
    patch = rec.get("openhydra-server-config-readable", "kubernetes:core/v1:ConfigMapPatch")
    assert patch.inputs["metadata"]["name"] == "open-hydra-config"
    readable = yaml.safe_load(patch.inputs["data"]["config.yaml"])
    assert readable["mysqlConfig"]["password"] == "(in Secret open-hydra-server-config)"
    assert "mysql-pw-marker" not in repr([d.as_json() for d in rec.declared])
    deployment = rec.get("openhydra-server-deployment", "kubernetes:apps/v1:DeploymentPatch")
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-1] == "/etc/open-hydra-secret/config.yaml"
    assert {"name": "ai-platform-config", "secret": {"secretName": "open-hydra-server-config"}} in deployment.inputs[
        "spec"
    ]["template"]["spec"]["volumes"]
    assert "kubernetes:core/v1:Secret::openhydra-server-config" in deployment.dependencies


def test_server_config_yaml_has_the_seed_keys_and_the_generated_password() -> None:
    cfg = Openhydra.model_validate(
        {
            "server": {
                "gpuDriver": "nvidia.com/tesla-v100",
                "datasetBasePath": "/data/ds",
                "courseBasePath": "/data/course",
                "jupyterLabHostBaseDir": "/data/lab",
                "vscodeBasePath": "/data/vscode",
                "disableAuth": True,
            }
        }
    )
    doc = yaml.safe_load(server_config(cfg, mysql_password="pw-xyz", server_ip="192.0.2.10"))
    assert doc["defaultGpuDriver"] == "nvidia.com/tesla-v100"
    assert doc["datasetBasePath"] == "/data/ds"
    assert doc["courseBasePath"] == "/data/course"
    assert doc["jupyterLabHostBaseDir"] == "/data/lab"
    assert doc["vscodeBasePath"] == "/data/vscode"
    assert doc["disableAuth"] is True
    assert doc["serverIP"] == "192.0.2.10"
    assert doc["dbType"] == "mysql"
    assert doc["mysqlConfig"]["password"] == "pw-xyz"
    assert doc["mysqlConfig"]["address"] == "mycluster-instances.mysql-operator.svc"


def test_server_deployment_mounts_the_configured_host_paths_and_rolls_on_config_change() -> None:
    rec = run_program(hydra(server={"datasetBasePath": "/data/ds", "courseBasePath": "/data/course"}))
    spec = rec.get("openhydra-server-deployment", "kubernetes:apps/v1:DeploymentPatch").inputs["spec"]
    template = spec["template"]
    # rolls when the config Secret changes: its resourceVersion, no digest of the secret text
    assert "ai-platform/secret-version" in template["metadata"]["annotations"]
    assert template["spec"]["volumes"][1:] == [
        {"name": "dataset", "hostPath": {"path": "/data/ds", "type": "Directory"}},
        {"name": "course", "hostPath": {"path": "/data/course", "type": "Directory"}},
    ]
    mounts = template["spec"]["containers"][0]["volumeMounts"]
    assert [m["mountPath"] for m in mounts] == ["/etc/open-hydra-secret", "/data/ds", "/data/course"]


def test_apiservice_waiter_waits_for_the_server_and_its_config() -> None:
    rec = run_program(hydra())
    waiter = rec.get("openhydra-apiservice", APISERVICE)
    assert waiter.inputs["metadata"]["name"] == "v1.open-hydra-server.openhydra.io"
    assert waiter.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Available"
    for dep in (
        f"{CONFIGFILE}::openhydra-server",
        "kubernetes:core/v1:ConfigMapPatch::openhydra-server-config-readable",
        "kubernetes:apps/v1:DeploymentPatch::openhydra-server-deployment",
    ):
        assert dep in waiter.dependencies


def test_without_auth_the_admin_is_an_openhydrauser_created_after_the_apiservice_is_available() -> None:
    rec = run_program(hydra(server={"disableAuth": True}))
    user = rec.get("openhydra-admin", USER)
    assert f"{APISERVICE}::openhydra-apiservice" in user.dependencies
    assert user.inputs["apiVersion"] == "open-hydra-server.openhydra.io/v1"
    assert user.inputs["metadata"]["name"] == "admin"
    assert user.inputs["spec"]["role"] == 1
    assert user.inputs["spec"]["password"] == SECRET
    assert "spec" in user.additional_secret_outputs
    generated = rec.get("openhydra-admin-password", "random:index/randomPassword:RandomPassword")
    assert "result" in generated.additional_secret_outputs
    assert [d for d in rec.declared if d.name == "openhydra-admin-bootstrap"] == []


def test_with_auth_the_first_admin_is_written_to_mysql_after_the_apiservice_is_available() -> None:
    rec = run_program(hydra())
    assert rec.by_type(USER) == []  # the server would refuse it: no user exists to authenticate
    secret = rec.get("openhydra-admin-bootstrap", "kubernetes:core/v1:Secret")
    assert secret.inputs["stringData"] == SECRET
    assert f"{APISERVICE}::openhydra-apiservice" in secret.dependencies
    job = rec.get("openhydra-admin-bootstrap", "kubernetes:batch/v1:Job")
    assert f"{APISERVICE}::openhydra-apiservice" in job.dependencies
    pod = job.inputs["spec"]["template"]
    assert "ai-platform/secret-version" in pod["metadata"]["annotations"]
    container = pod["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "open-hydra-admin-bootstrap"}}]
    assert container["env"] == [{"name": "MYSQL_HOST", "value": "mycluster-instances.mysql-operator.svc"}]
    script = container["command"][-1]
    assert "INSERT INTO user" in script and "ON DUPLICATE KEY UPDATE password" in script
    assert job.provider == K3S_PROVIDER


def test_configured_admin_password_is_used_and_stays_secret() -> None:
    rec = run_program(hydra(admin={"username": "teacher", "password": "admin-pass-from-config"}))
    assert [d for d in rec.by_type(PASSWORD) if d.name == "openhydra-admin-password"] == []
    assert rec.outputs["credentials"]["openhydra"] == {"username": "teacher", "password": SECRET}
    assert "admin-pass-from-config" not in repr([d.as_json() for d in rec.declared])
    rec = run_program(hydra(admin={"username": "teacher"}, server={"disableAuth": True}))
    assert rec.get("openhydra-admin", USER).inputs["metadata"]["name"] == "teacher"


def test_admin_user_goes_through_a_provider_without_server_side_apply(tmp_path: Path) -> None:
    # The platform wiring passes the kubeconfig; a few lines of program show what it gets.
    program = tmp_path / "program.py"
    program.write_text(
        (ROOT / "__main__.py").read_text()
        + "\nfrom components.openhydra import OpenHydra, OpenHydraArgs\n"
        + "_c = loaded.config\n"
        + "import stacks.platform as _p\n"
        + "_k = _p.K3sCluster('k3', _p.K3sClusterArgs(cluster=_c.cluster, stack='x', base_dir=project_dir))\n"
        + "OpenHydra('oh', OpenHydraArgs(config=_c.openhydra, provider=_k.provider, base_dir=project_dir,"
        + " nodes=[], local_path_provided=True, gateway_address='192.0.2.1', kubeconfig=_k.kubeconfig))\n"
    )
    rec = mockrun.run(hydra(server={"disableAuth": True}), "test", ROOT, program=program)
    provider = rec.get("oh-aggregated-api-provider", "pulumi:providers:kubernetes")
    assert provider.inputs["enableServerSideApply"] == "false"
    assert provider.inputs["kubeconfig"] == SECRET
    assert rec.get("oh-admin", USER).provider == "pulumi:providers:kubernetes::oh-aggregated-api-provider"


# -- nodes ------------------------------------------------------------------------------------


def test_host_directories_are_created_on_every_node_after_its_install() -> None:
    rec = run_program(hydra())
    commands = {d.name: d for d in rec.by_type(CMD) if d.name.endswith("-host-dirs")}
    assert sorted(commands) == ["openhydra-a0-host-dirs", "openhydra-a1-host-dirs", "openhydra-s0-host-dirs"]
    for node in ("s0", "a0", "a1"):
        d = commands[f"openhydra-{node}-host-dirs"]
        assert f"{CMD}::k3s-{node}-ready" in d.dependencies
        script, args, sudo = command_args(d)
        assert script == "openhydra-host-dirs.sh"
        assert args == {
            "dataset": "/mnt/public-dataset",
            "course": "/mnt/public-course",
            "jupyterlab": "/mnt/jupyter-lab",
            "vscode": "/mnt/public-vscode",
        }
        assert not sudo
        assert command_args(d, "delete")[:2] == ("openhydra-host-dirs-remove.sh", args)
        assert d.inputs["triggers"] == list(args.values())
        assert d.parent == PARENT


def test_host_directories_only_on_the_named_nodes_with_sudo_for_a_non_root_user() -> None:
    raw = with_(hydra(nodes=["a1"], server={"vscodeBasePath": "/srv/vscode"}), "cluster.ssh.user", "ops")
    rec = run_program(raw)
    commands = [d for d in rec.by_type(CMD) if d.name.endswith("-host-dirs")]
    assert [d.name for d in commands] == ["openhydra-a1-host-dirs"]
    _, args, sudo = command_args(commands[0])
    assert sudo and args["vscode"] == "/srv/vscode"


# -- reverse proxy, UI ------------------------------------------------------------------------


def test_ui_nodeport_and_url_come_from_config() -> None:
    rec = run_program(hydra(uiNodePort=30555))
    patch = rec.get("openhydra-ui-service", "kubernetes:core/v1:ServicePatch")
    assert patch.inputs["metadata"]["name"] == "open-hydra-ui"
    assert patch.inputs["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30555}]
    assert f"{CONFIGFILE}::openhydra-ui" in patch.dependencies
    assert rec.outputs["urls"]["openhydra"] == "http://10.0.0.10:30555"


def test_ui_reaches_the_reverse_proxy_by_its_service_name() -> None:
    rec = run_program(hydra())
    conf = rec.get("openhydra-ui-config", "kubernetes:core/v1:ConfigMap").inputs["data"]["nginx.conf"]
    assert "proxy_pass http://reverse-proxy.open-hydra.svc.cluster.local/api/apis/;" in conf
    assert "{address}" not in conf
    ui = rec.get("openhydra-ui", CONFIGFILE)
    assert "kubernetes:core/v1:ConfigMap::openhydra-ui-config" in ui.dependencies


def test_reverse_proxy_authenticates_with_its_own_token_and_verifies_the_api_server() -> None:
    rec = run_program(hydra())
    conf = rec.get("openhydra-reverse-proxy-config", "kubernetes:core/v1:ConfigMapPatch").inputs["data"]["nginx.conf"]
    assert "include /etc/nginx/ai-platform/auth.conf;" in conf
    assert "proxy_ssl_verify on;" in conf and "proxy_ssl_trusted_certificate /etc/nginx/ai-platform/ca.crt;" in conf
    assert "proxy_ssl_certificate" not in conf.replace("proxy_ssl_certificate_key", "")  # no client key at all
    token = rec.get("openhydra-reverse-proxy-token", "kubernetes:core/v1:Secret")
    assert token.inputs["type"] == "kubernetes.io/service-account-token"
    assert token.inputs["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "open-hydra-reverse-proxy"}
    spec = rec.get("openhydra-reverse-proxy-deployment", "kubernetes:apps/v1:DeploymentPatch").inputs["spec"]
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "open-hydra-reverse-proxy"
    assert not any("hostPath" in v for v in pod["volumes"])  # no host directory of keys mounted
    assert "nodeSelector" not in pod
    assert pod["volumes"][1]["secret"]["secretName"] == "open-hydra-reverse-proxy-token"


def test_manifests_from_local_copies_for_airgap(tmp_path: Path) -> None:
    server = tmp_path / "install-open-hydra.yaml"
    server.write_text("kind: List\n")
    rec = run_program(hydra(manifests={"openHydra": {"url": "https://x/v0.1.0/a.yaml", "localPath": str(server)}}))
    assert rec.get("openhydra-server", CONFIGFILE).inputs["file"] == str(server)
    missing = hydra(manifests={"ui": {"url": "https://x/v0.1.0/a.yaml", "localPath": str(tmp_path / "nope.yaml")}})
    with pytest.raises(pulumi.RunError, match=r"openhydra\.manifests\.ui\.localPath: file not found"):
        run_program(missing)


# -- GPU, switches, rules ---------------------------------------------------------------------


def test_gpu_time_slicing_is_off_by_default() -> None:
    rec = run_program(hydra())
    assert not [d for d in rec.declared if "time-slicing" in d.name or "cluster-policy" in d.name]


def test_layer_off_declares_nothing() -> None:
    for raw in (cluster_only(), hydra(enabled=False)):
        rec = run_program(raw)
        assert not [d for d in rec.declared if d.name.startswith("openhydra")]


def test_another_namespace_is_refused() -> None:
    with pytest.raises(pulumi.RunError, match=r"openhydra\.namespace"):
        run_program(hydra(namespace="hydra"))


def test_every_kubernetes_resource_has_the_provider_and_the_rules_hold() -> None:
    for auth_off in (False, True):
        raw = with_(hydra(gpuTimeSlicing={"enabled": True}, nodes=["a0"]), "cluster.agents.0.gpu", True)
        rec = run_program(with_(raw, "openhydra.server", {"disableAuth": auth_off}))
        for d in ours(rec):
            if d.type.endswith(":OpenHydraUser"):  # served by the aggregated API: its own provider, no SSA
                assert d.provider == "pulumi:providers:kubernetes::openhydra-aggregated-api-provider", d.key
            elif d.type.startswith("kubernetes:"):
                assert d.provider == K3S_PROVIDER, d.key
        assert rules.check(rec) == []
        values = [v for d in ours(rec) for _, v in rules.leaves(d.inputs)]
        assert "openhydra" not in values  # the documented password
        assert not [v for v in values if isinstance(v, str) and "plan-fake-" in v]
