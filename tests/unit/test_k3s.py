"""K3sCluster under mocks: what each node runs, in which order, with which secrets."""

from __future__ import annotations

import base64
import itertools
import shlex
from typing import Any

import yaml

from components import kubeconfig as kc
from components.k3s import registries_yaml
from config.cluster import Cluster
from stacks.mockrun import SECRET, Declared, Recording
from tests.conftest import HOST_KEY, cluster_only, platform, run_program, with_

CMD = "command:remote:Command"


def commands(rec: Recording, suffix: str) -> dict[str, Declared]:
    return {d.name: d for d in rec.by_type(CMD) if d.name.endswith(suffix)}


def args_of(d: Declared, field: str = "create") -> dict[str, str]:
    words = shlex.split(d.inputs[field])
    if words[:2] == ["sudo", "-n"]:
        words = words[2:]
    assert words[:2] == ["bash", "-c"]
    return dict(w.split("=", 1) for w in words[4:])


def script_of(d: Declared, field: str = "create") -> str:
    words = shlex.split(d.inputs[field])
    return words[words.index("-c") + 1]


def test_one_install_and_ready_per_node_and_one_kubeconfig() -> None:
    rec = run_program(cluster_only(servers=1, agents=2))
    assert sorted(commands(rec, "-install")) == ["k3s-a0-install", "k3s-a1-install", "k3s-s0-install"]
    assert sorted(commands(rec, "-ready")) == ["k3s-a0-ready", "k3s-a1-ready", "k3s-s0-ready"]
    assert sorted(commands(rec, "-registries")) == ["k3s-a0-registries", "k3s-a1-registries", "k3s-s0-registries"]
    assert [d.name for d in rec.by_type(CMD) if d.name == "k3s-kubeconfig"] == ["k3s-kubeconfig"]


def test_agents_wait_for_the_last_server_only_never_for_each_other() -> None:
    rec = run_program(cluster_only(servers=3, agents=4))
    inst = commands(rec, "-install")
    assert inst["k3s-s0-install"].dependencies == ["random:index/randomPassword:RandomPassword::k3s-token"]
    assert f"{CMD}::k3s-s0-install" in inst["k3s-s1-install"].dependencies
    assert f"{CMD}::k3s-s1-install" in inst["k3s-s2-install"].dependencies
    for i in range(4):
        deps = inst[f"k3s-a{i}-install"].dependencies
        assert f"{CMD}::k3s-s2-install" in deps
        assert not any("-a" in d.split("::")[-1] for d in deps), deps


def test_ha_first_server_initialises_others_join() -> None:
    rec = run_program(cluster_only(servers=3, agents=1))
    inst = commands(rec, "-install")
    cfg0 = yaml.safe_load(base64.b64decode(args_of(inst["k3s-s0-install"])["config"]))
    cfg1 = yaml.safe_load(base64.b64decode(args_of(inst["k3s-s1-install"])["config"]))
    agent = yaml.safe_load(base64.b64decode(args_of(inst["k3s-a0-install"])["config"]))
    assert cfg0["cluster-init"] is True and "server" not in cfg0
    assert cfg1["server"] == "https://10.0.0.10:6443" and "cluster-init" not in cfg1
    assert agent["server"] == "https://10.0.0.10:6443"
    assert cfg0["disable"] == ["traefik"] and "disable" not in agent
    assert cfg0["token-file"] == "/etc/rancher/k3s/cluster-token"


def test_single_server_has_no_cluster_init() -> None:
    rec = run_program(cluster_only(servers=1, agents=0))
    cfg = yaml.safe_load(base64.b64decode(args_of(commands(rec, "-install")["k3s-s0-install"])["config"]))
    assert "cluster-init" not in cfg


def test_growing_servers_keeps_the_first_servers_resource() -> None:
    one = run_program(cluster_only(servers=1, agents=1))
    three = run_program(cluster_only(servers=3, agents=1))
    s0_1, s0_3 = one.get("k3s-s0-install"), three.get("k3s-s0-install")
    # Same name and triggers: an update (idempotent script, restart for cluster-init), not a replace.
    assert s0_1.inputs["triggers"] == s0_3.inputs["triggers"]
    assert args_of(s0_1)["version"] == args_of(s0_3)["version"]


def test_token_only_on_stdin_never_in_command_lines() -> None:
    raw = cluster_only(token="super-secret-token-value")
    rec = run_program(raw)
    for d in rec.by_type(CMD):
        for field in ("create", "delete", "update"):
            assert "super-secret-token-value" not in str(d.inputs.get(field, ""))
        if d.name.endswith(("-install", "-registries")):
            assert d.inputs["stdin"] == SECRET
            assert "stdin" in d.additional_secret_outputs
    assert "super-secret-token-value" not in repr([d.as_json() for d in rec.declared])


def test_kubeconfig_command_stdout_is_secret_and_provider_uses_it() -> None:
    rec = run_program(cluster_only())
    kcfg = rec.get("k3s-kubeconfig")
    assert "stdout" in kcfg.additional_secret_outputs
    assert kcfg.inputs["logging"] == "stderr"
    provider = rec.get("k3s-provider", "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == SECRET
    assert provider.inputs["clusterIdentifier"] == "test-k3s"
    assert f"{CMD}::k3s-kubeconfig" in provider.dependencies
    assert rec.outputs["kubeconfig"] == SECRET
    assert rec.outputs["apiServer"] == "https://10.0.0.10:6443"


def test_every_create_has_its_delete() -> None:
    rec = run_program(cluster_only(servers=3, agents=2))
    for d in rec.by_type(CMD):
        if d.name == "k3s-kubeconfig" or d.name.endswith("-registries"):
            continue  # reads and settings rollouts: nothing to undo (uninstall removes the file)
        assert d.inputs.get("delete"), d.name
    assert "# ---- k3s-uninstall.sh ----" in script_of(rec.get("k3s-a0-install"), "delete")
    assert args_of(rec.get("k3s-a0-install"), "delete") == {"role": "agent"}
    assert args_of(rec.get("k3s-a0-ready"), "delete") == {"node": "a0", "timeout": "300"}
    assert "# ---- k3s-node-remove.sh ----" in script_of(rec.get("k3s-a0-ready"), "delete")


def test_ready_commands_run_on_the_first_server_and_drain_on_delete() -> None:
    rec = run_program(cluster_only(servers=3, agents=1))
    ready = rec.get("k3s-a0-ready")
    assert f"{CMD}::k3s-a0-install" in ready.dependencies
    assert f"{CMD}::k3s-s0-install" in ready.dependencies
    assert ready.delete_before_replace
    assert "kubectl drain" in script_of(ready, "delete")


def test_the_first_servers_node_is_removed_last() -> None:
    """Removing a server's Node removes its etcd member; every removal runs on the first server,
    so its own Node must go last (a destroy deletes dependents first)."""
    rec = run_program(cluster_only(servers=3, agents=2))
    for n in ("s1", "s2", "a0", "a1"):
        assert f"{CMD}::k3s-s0-ready" in rec.get(f"k3s-{n}-ready").dependencies, n


def test_registries_roll_one_node_after_another() -> None:
    rec = run_program(cluster_only(servers=3, agents=2))
    order = ["s0", "s1", "s2", "a0", "a1"]
    for prev, cur in itertools.pairwise(order):
        assert f"{CMD}::k3s-{prev}-registries" in rec.get(f"k3s-{cur}-registries").dependencies


def test_agents_probe_their_kubelet_to_know_k3s_is_back_servers_their_api() -> None:
    cfg = cluster_only(servers=1, agents=3)
    cfg = with_(cfg, "cluster.agents.1.extraArgs", ["--kubelet-arg=healthz-port=10249"])
    cfg = with_(cfg, "cluster.agents.2.extraArgs", ["--kubelet-arg=healthz-port=0"])
    rec = run_program(cfg)
    for step, field in (("install", "create"), ("registries", "update")):
        assert "healthz" not in args_of(rec.get(f"k3s-s0-{step}"), field)
        assert args_of(rec.get(f"k3s-a0-{step}"), field)["healthz"] == "127.0.0.1:10248"
        assert args_of(rec.get(f"k3s-a1-{step}"), field)["healthz"] == "127.0.0.1:10249"
        assert args_of(rec.get(f"k3s-a2-{step}"), field)["healthz"] == "none"


def test_registries_run_nothing_on_create_unless_other_layers_add_entries() -> None:
    """A new node's install writes the cluster's registries.yaml; only later changes (update)
    need the rollout. With platform layers adding the CSGHub registry, create runs it too."""
    rec = run_program(cluster_only(servers=1, agents=2))
    for d in commands(rec, "-registries").values():
        assert "create" not in d.inputs, d.name
        assert "# ---- k3s-registries.sh ----" in script_of(d, "update")
    full = run_program(platform())
    regs = commands(full, "-registries")
    assert regs
    for d in regs.values():
        assert d.inputs["create"] == d.inputs["update"], d.name


def test_registries_yaml_renders_mirrors_rewrites_and_auth() -> None:
    cluster = Cluster.model_validate(
        with_(
            cluster_only(),
            "cluster.k3s.registries",
            {
                "mirrors": {"docker.io": {"endpoints": ["https://m.example"], "rewrite": {"^(.*)$": "lib/$1"}}},
                "configs": {
                    "m.example": {"auth": {"username": "u", "password": "p"}, "tls": {"insecureSkipVerify": True}}
                },
            },
        )["cluster"]
    )
    doc = yaml.safe_load(registries_yaml(cluster, {"configs": {"registry.x": {"auth": {"username": "r"}}}}))
    assert doc["mirrors"]["docker.io"] == {"endpoint": ["https://m.example"], "rewrite": {"^(.*)$": "lib/$1"}}
    assert doc["configs"]["m.example"] == {
        "auth": {"username": "u", "password": "p"},
        "tls": {"insecure_skip_verify": True},
    }
    assert doc["configs"]["registry.x"] == {"auth": {"username": "r"}}


def test_airgap_uploads_bundle_then_installs_without_download(tmp_path: Any) -> None:
    for f in ("k3s", "images.tar.zst", "install.sh"):
        (tmp_path / f).write_text(f)
    raw = cluster_only(
        install="airgap",
        airgap={
            "binary": str(tmp_path / "k3s"),
            "images": str(tmp_path / "images.tar.zst"),
            "installScript": str(tmp_path / "install.sh"),
        },
    )
    rec = run_program(raw)
    copies = [d for d in rec.by_type("command:remote:CopyToRemote") if d.name.startswith("k3s-a0-")]
    assert sorted(d.inputs["remotePath"] for d in copies) == [
        "/var/tmp/ai-platform/k3s-airgap/images.tar.zst",
        "/var/tmp/ai-platform/k3s-airgap/install.sh",
        "/var/tmp/ai-platform/k3s-airgap/k3s",
    ]
    inst = rec.get("k3s-a0-install")
    assert all(f"command:remote:CopyToRemote::{c.name}" in inst.dependencies for c in copies)
    a = args_of(inst)
    assert (
        a["install"] == "airgap"
        and a["bundle"] == "/var/tmp/ai-platform/k3s-airgap"
        and a["images"] == "images.tar.zst"
    )
    assert "INSTALL_K3S_SKIP_DOWNLOAD=true" in script_of(inst)
    # the first server's bundle goes up first (alone); the other nodes' after it, not after each other
    all_copies = rec.by_type("command:remote:CopyToRemote")
    first = sorted(f"command:remote:CopyToRemote::{d.name}" for d in all_copies if d.name.startswith("k3s-s0-"))
    assert len(first) == 3
    for d in all_copies:
        if d.name.startswith("k3s-s0-"):
            assert d.dependencies == []
        else:
            assert sorted(d.dependencies) == first, d.name


def test_airgap_bundle_directory_goes_up_in_one_copy_per_node(tmp_path: Any) -> None:
    bundle = tmp_path / "k3s-bundle"
    bundle.mkdir()
    for f in ("k3s", "k3s-airgap-images-arm64.tar.gz", "install.sh"):
        (bundle / f).write_text(f)
    rec = run_program(cluster_only(install="airgap", airgap={"dir": str(bundle)}))
    for node in ("s0", "a0"):
        (copy,) = [d for d in rec.by_type("command:remote:CopyToRemote") if d.name.startswith(f"k3s-{node}-")]
        assert copy.name == f"k3s-{node}-upload-bundle"
        # "dir/": pulumi-command copies the directory's contents into remotePath, where the
        # three-file form puts the files (without the slash: into remotePath/k3s-bundle)
        assert copy.inputs["source"] == {"archive": {"path": f"{bundle}/"}}
        assert copy.inputs["remotePath"] == "/var/tmp/ai-platform/k3s-airgap"
        inst = rec.get(f"k3s-{node}-install")
        assert f"command:remote:CopyToRemote::{copy.name}" in inst.dependencies
        a = args_of(inst)
        assert a["bundle"] == "/var/tmp/ai-platform/k3s-airgap" and a["images"] == "k3s-airgap-images-arm64.tar.gz"
    agent_copy = rec.get("k3s-a0-upload-bundle")
    assert agent_copy.dependencies == ["command:remote:CopyToRemote::k3s-s0-upload-bundle"]


def test_online_cn_mirror() -> None:
    rec = run_program(cluster_only(mirror="cn"))
    assert args_of(rec.get("k3s-s0-install"))["mirror"] == "cn"
    assert "INSTALL_K3S_MIRROR=cn" in script_of(rec.get("k3s-s0-install"))


def test_non_root_user_runs_scripts_with_sudo_and_bastion_is_a_proxy() -> None:
    raw = with_(cluster_only(), "cluster.ssh.user", "ops")
    raw = with_(raw, "cluster.ssh.bastion", {"host": "10.9.9.9", "user": "jump", "hostKey": HOST_KEY})
    rec = run_program(raw)
    inst = rec.get("k3s-a0-install")
    assert inst.inputs["create"].startswith("sudo -n bash -c ")
    assert inst.inputs["connection"] == SECRET  # pulumi-command keeps the whole connection secret
    assert "connection" in inst.additional_secret_outputs


def test_node_labels_are_managed_on_the_node_objects_with_the_provider() -> None:
    raw = with_(cluster_only(), "cluster.agents.0.labels", {"tier": "gpu"})
    rec = run_program(raw)
    patch = rec.get("k3s-a0-labels", "kubernetes:core/v1:NodePatch")
    assert patch.inputs["metadata"]["labels"] == {"tier": "gpu"}
    assert patch.provider == "pulumi:providers:kubernetes::k3s-provider"
    assert f"{CMD}::k3s-a0-ready" in patch.dependencies
    # Labels are not in config.yaml: changing them must not restart K3s.
    cfg = base64.b64decode(args_of(rec.get("k3s-a0-install"))["config"]).decode()
    assert "tier" not in cfg


def test_gpu_node_gets_checked_runtime_and_runtimeclass() -> None:
    raw = with_(cluster_only(), "cluster.k3s.disable", ["traefik", "runtimes"])  # else K3s makes it
    rec = run_program(with_(raw, "cluster.agents.1.gpu", True))
    assert args_of(rec.get("k3s-a1-install"))["gpu"] == "true"
    assert args_of(rec.get("k3s-a0-install"))["gpu"] == "false"
    rc = rec.get("k3s-nvidia-runtimeclass", "kubernetes:node.k8s.io/v1:RuntimeClass")
    assert rc.inputs["handler"] == "nvidia" and rc.provider == "pulumi:providers:kubernetes::k3s-provider"


def test_changing_the_host_replaces_the_node_uninstalling_first() -> None:
    rec = run_program(cluster_only())
    inst = rec.get("k3s-a0-install")
    assert inst.inputs["triggers"] == ["10.0.1.10", "agent"]
    assert inst.delete_before_replace


def test_existing_cluster_mode_builds_only_the_provider() -> None:
    raw = cluster_only(servers=0, agents=0)
    raw["cluster"]["servers"] = []
    raw["cluster"]["kubeconfig"] = kc.rewrite(
        "apiVersion: v1\nkind: Config\nclusters: [{name: default, cluster: {server: https://127.0.0.1:6443}}]\n"
        "users: [{name: default, user: {token: t}}]\ncontexts: [{name: default, context: {cluster: default, user: default}}]\n",
        "https://k8s.example.com:6443",
        "x",
    )
    rec = run_program(raw)
    assert rec.by_type(CMD) == []
    assert rec.get("k3s-provider").inputs["kubeconfig"] == SECRET
    assert rec.outputs["apiServer"] == "https://k8s.example.com:6443"


def test_kubeconfig_rewrite_parses_and_renames() -> None:
    from stacks.mockrun import FAKE_KUBECONFIG

    doc = yaml.safe_load(kc.rewrite(FAKE_KUBECONFIG, "https://10.1.1.1:6443", "ai-platform-prod"))
    assert doc["clusters"][0] == {
        "name": "ai-platform-prod",
        "cluster": {"certificate-authority-data": "UExBTi1GQUtFLUNB", "server": "https://10.1.1.1:6443"},
    }
    assert doc["current-context"] == "ai-platform-prod"
    assert doc["contexts"][0]["context"] == {"cluster": "ai-platform-prod", "user": "ai-platform-prod"}
    assert kc.api_server_url("fd00::1") == "https://[fd00::1]:6443"


def test_kubeconfig_rewrite_refuses_unexpected_shapes() -> None:
    import pytest

    with pytest.raises(kc.KubeconfigError):
        kc.rewrite("kind: Config\nclusters: []\n", "https://x:6443", "n")
    with pytest.raises(kc.KubeconfigError):
        kc.rewrite(": not yaml :\n  - [", "https://x:6443", "n")


def test_version_change_is_an_in_place_upgrade_servers_in_turn_then_agents() -> None:
    old = run_program(cluster_only(servers=3, agents=2))
    new = run_program(cluster_only(servers=3, agents=2, version="v1.31.1+k3s1"))
    for n in ("s0", "s1", "s2", "a0", "a1"):
        before, after = old.get(f"k3s-{n}-install"), new.get(f"k3s-{n}-install")
        assert before.inputs["triggers"] == after.inputs["triggers"], "an upgrade must not replace (uninstall) a node"
        assert (args_of(before)["version"], args_of(after)["version"]) == ("v1.30.4+k3s1", "v1.31.1+k3s1")
    # The engine updates in dependency order: s0, then s1, then s2, then both agents together.
    deps = {n: new.get(f"k3s-{n}-install").dependencies for n in ("s1", "s2", "a0", "a1")}
    assert f"{CMD}::k3s-s0-install" in deps["s1"] and f"{CMD}::k3s-s1-install" in deps["s2"]
    assert all(f"{CMD}::k3s-s2-install" in deps[a] for a in ("a0", "a1"))
    assert "INSTALL_K3S_FORCE_RESTART=true" in script_of(new.get("k3s-a0-install"))


def test_registries_roll_servers_one_by_one_then_agents_in_lanes() -> None:
    raw = cluster_only(servers=1, agents=120)
    for i, a in enumerate(raw["cluster"]["agents"]):
        a["host"] = f"10.0.{1 + i // 200}.{10 + i % 200}"
    rec = run_program(raw)

    def after(name: str) -> set[str]:
        return {d.split("::")[1] for d in rec.get(f"k3s-{name}-registries").dependencies if d.endswith("-registries")}

    assert after("s0") == set()
    # 120 agents: three lanes, each one node at a time after the last server
    assert after("a0") == {"k3s-s0-registries"} and after("a2") == {"k3s-s0-registries"}
    assert after("a3") == {"k3s-a0-registries"} and after("a119") == {"k3s-a116-registries"}
    small = run_program(cluster_only(servers=1, agents=3))
    deps = {d.split("::")[1] for d in small.get("k3s-a2-registries").dependencies if d.endswith("-registries")}
    assert deps == {"k3s-a1-registries"}  # up to 50 agents: one at a time
