"""The typed stack config: the shipped stack files validate; bad configs are refused,
every problem named by its key path, before anything is registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.load import ConfigError, from_stack_file, validate
from stacks.__main__ import main as stacks_cli
from tests.conftest import HOST_KEY, ROOT, cluster_only, node, run_program, with_


def problems(raw: dict[str, Any], base: Path = ROOT) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate(raw, base)
    return [str(p) for p in err.value.problems]


def test_dev_stack_validates() -> None:
    loaded = from_stack_file(ROOT / "Pulumi.dev.yaml")
    assert [n.name for n in loaded.config.nodes()] == ["dev-server-0"]
    assert "cluster.ssh.privateKey" in loaded.encrypted_paths


def test_prod_stack_validates(prod_dir: Path) -> None:
    cfg = from_stack_file(prod_dir / "Pulumi.prod.yaml").config
    assert len(cfg.cluster.servers) == 3 and len(cfg.cluster.agents) >= 3
    assert any(n.gpu for n in cfg.cluster.agents)
    assert cfg.cluster.k3s.install == "airgap"
    assert cfg.gateway.service_type == "LoadBalancer"
    assert cfg.dataflow.databases.postgresql.mode == "external"
    assert cfg.octopus is not None and "nfs" in cfg.octopus.volumes.minio.source


def test_prod_without_bundle_names_the_keys() -> None:
    msgs = problems(
        __import__("config.load", fromlist=["x"]).read_stack_file(ROOT / "Pulumi.prod.yaml")[0], Path("/nonexistent")
    )
    assert any(m.startswith("ai-platform:cluster.k3s.airgap.dir: file not found") for m in msgs)


def test_minimal_cluster_is_valid() -> None:
    validate(cluster_only(), ROOT)


BAD: list[tuple[str, Any, str]] = [
    # (dotted path in cluster_only(), bad value, expected key path in the message)
    ("cluster.servers.0.host", "not a host!", "cluster.servers[0].host"),
    ("cluster.servers.0.name", "Bad_Name", "cluster.servers[0].name"),
    ("cluster.agents.1.name", "s0", "cluster.agents[1].name"),
    ("cluster.agents.1.host", "10.0.0.10", "cluster.agents[1].host"),
    ("cluster.servers.0.port", 70000, "cluster.servers[0].port"),
    ("cluster.servers.0.port", 0, "cluster.servers[0].port"),
    ("cluster.servers.0.nodeIp", "10.0.0.300", "cluster.servers[0].nodeIp"),
    ("cluster.servers.0.taints", ["gpu:Sometimes"], "cluster.servers[0].taints[0]"),
    ("cluster.servers.0.hostKey", "not-a-key", "cluster.servers[0].hostKey"),
    ("cluster.servers.0.hostKey", None, "cluster.servers[0].hostKey"),
    ("cluster.servers.0.extraArgs", ["--x=$(rm -rf /)"], "cluster.servers[0]"),
    ("cluster.servers.0.colour", "red", "cluster.servers[0].colour"),
    ("cluster.k3s.version", "latest", "cluster.k3s.version"),
    ("cluster.k3s.version", "1.30.4", "cluster.k3s.version"),
    ("cluster.k3s.install", "usb-stick", "cluster.k3s.install"),
    ("cluster.k3s.install", "airgap", "cluster.k3s"),
    ("cluster.k3s.clusterCidr", "10.42.0.0/33", "cluster.k3s.clusterCidr"),
    ("cluster.k3s.serviceCidr", "10.43.0.1/16", "cluster.k3s.serviceCidr"),
    ("cluster.k3s.bindAddress", "localhost", "cluster.k3s.bindAddress"),
    ("cluster.k3s.readyTimeoutSeconds", 1, "cluster.k3s.readyTimeoutSeconds"),
    ("cluster.k3s.mirror", "eu", "cluster.k3s.mirror"),
    ("cluster.ssh.port", "twenty-two", "cluster.ssh.port"),
    ("cluster.ssh.privateKey", None, "cluster.ssh"),
    ("cluster.ssh.privateKeyPath", "/no/such/key", "cluster.ssh"),
    ("cluster.servers", [], "cluster.servers"),
    ("cluster.kubeconfig", "apiVersion: v1", "cluster.kubeconfig"),
    ("clustr", {}, "clustr"),
    ("csghub.enabled", "maybe", "csghub.enabled"),
    ("storage.mode", "ceph", "storage.mode"),
    ("knative.domain", "10.0.0.1", "knative.domain"),
    ("knative.kourier.serviceType", "NodePort", "knative.kourier"),
    ("knative.scaleToZeroGracePeriod", "1 hour", "knative.scaleToZeroGracePeriod"),
    ("gateway.serviceType", "ClusterIP", "gateway.serviceType"),
    ("gateway.nodePorts.http", 80, "gateway.nodePorts.http"),
]


@pytest.mark.parametrize(("path", "value", "key"), BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_config_names_the_key(path: str, value: Any, key: str) -> None:
    msgs = problems(with_(cluster_only(), path, value))
    assert any(m.startswith(f"ai-platform:{key}") for m in msgs), msgs


def test_even_number_of_servers_is_refused() -> None:
    msgs = problems(cluster_only(servers=2))
    assert msgs == ["ai-platform:cluster.servers: 2 servers: HA embedded etcd needs an odd number (1, 3, 5, ...)"]


def test_all_problems_are_listed_at_once() -> None:
    raw = with_(with_(cluster_only(), "cluster.servers.0.host", "bad host"), "cluster.k3s.version", "latest")
    raw = with_(raw, "storage.mode", "ceph")
    msgs = problems(raw)
    assert len(msgs) == 3


def test_domain_must_be_a_dns_name() -> None:
    raw = cluster_only()
    raw.update({"csghub": {"domain": "192.168.1.10"}})
    assert any(m.startswith("ai-platform:csghub.domain: '192.168.1.10' is an IP address") for m in problems(raw))


def test_nodeport_collision_names_both_keys() -> None:
    raw = cluster_only()
    raw.update({"knative": {"kourier": {"serviceType": "NodePort", "httpNodePort": 30080}}})
    raw["gateway"] = {"serviceType": "NodePort"}
    raw["csghub"] = {"domain": "ai.example.com"}
    msgs = problems(raw)
    assert "ai-platform:knative.kourier.httpNodePort: NodePort 30080 is also used by gateway.nodePorts.http" in msgs


def test_gpu_layer_needs_a_gpu_node() -> None:
    raw = cluster_only()
    raw.update({"knative": {}, "gateway": {}, "csghub": {"gpu": True}})
    assert "ai-platform:csghub.gpu: GPU workloads need at least one node with gpu: true" in problems(raw)


def test_dataflow_needs_csghub_or_standalone() -> None:
    raw = cluster_only()
    raw["dataflow"] = {"enabled": True, "persistence": {"storageClass": "x"}}
    msgs = problems(raw)
    assert any(m.startswith("ai-platform:dataflow.standalone: Dataflow without the CSGHub layer") for m in msgs)
    assert any(m.startswith("ai-platform:dataflow.externalUrl: required") for m in msgs)


def test_standalone_dataflow_beside_csghub_is_refused() -> None:
    raw = cluster_only()
    raw.update({"knative": {}, "gateway": {}, "csghub": {}})
    raw["dataflow"] = {"enabled": True, "standalone": True, "persistence": {"storageClass": "nfs"}}
    msgs = problems(raw)
    assert any(
        "second GatewayClass 'csghub-gateway'" in m and m.startswith("ai-platform:dataflow.standalone") for m in msgs
    )


KUBECONFIG = (
    "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://10.9.0.1:6443'}}]\n"
    "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {}}]\n"
)


def test_existing_cluster_excludes_nodes() -> None:
    raw = cluster_only()
    raw["cluster"]["kubeconfig"] = KUBECONFIG
    assert (
        "ai-platform:cluster.kubeconfig: existing-cluster mode (kubeconfig given) excludes servers and agents"
        in problems(raw)
    )


def test_airgap_files_must_exist(tmp_path: Path) -> None:
    raw = cluster_only(install="airgap", airgap={"binary": "k3s", "images": "img.tar", "installScript": "install.sh"})
    (tmp_path / "k3s").write_text("x")
    msgs = problems(raw, tmp_path)
    assert msgs == [
        "ai-platform:cluster.k3s.airgap.images: file not found on the provisioner: img.tar",
        "ai-platform:cluster.k3s.airgap.installScript: file not found on the provisioner: install.sh",
    ]


def test_airgap_is_a_directory_or_three_files_not_both_nor_part(tmp_path: Path) -> None:
    both = cluster_only(install="airgap", airgap={"dir": "bundle", "binary": "k3s"})
    assert any(
        m.startswith("ai-platform:cluster.k3s.airgap: ") and "give `dir` or the three files, not both" in m
        for m in problems(both, tmp_path)
    )
    part = cluster_only(install="airgap", airgap={"binary": "k3s", "images": "img.tar"})
    assert any(
        m.startswith("ai-platform:cluster.k3s.airgap: ") and "`installScript` missing" in m for m in problems(part)
    )


@pytest.mark.parametrize(
    ("present", "says"),
    [
        (["k3s", "install.sh"], "images tarballs found: none"),
        (["k3s", "k3s-airgap-images-amd64.tar.zst"], "missing install.sh"),
        (
            ["k3s", "install.sh", "k3s-airgap-images-amd64.tar", "k3s-airgap-images-arm64.tar"],
            "images tarballs found: k3s-airgap-images-amd64.tar, k3s-airgap-images-arm64.tar",
        ),
        (["k3s", "install.sh", "k3s-airgap-images-amd64.tar", "notes.txt"], "more than the bundle"),
    ],
)
def test_airgap_directory_must_hold_exactly_the_bundle_in_a_review_too(
    tmp_path: Path, present: list[str], says: str
) -> None:
    (tmp_path / "b").mkdir()
    for name in present:
        (tmp_path / "b" / name).write_text(name)
    raw = cluster_only(install="airgap", airgap={"dir": "b"})
    for review in (False, True):
        with pytest.raises(ConfigError) as err:
            validate(raw, tmp_path, review=review)
        (msg,) = [str(p) for p in err.value.problems]
        assert msg.startswith("ai-platform:cluster.k3s.airgap.dir: ") and says in msg, msg


def test_encrypted_value_on_plain_field_is_refused(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text(
        "config:\n  ai-platform:cluster:\n    ssh: {privateKey: {secure: v1:abc}, user: {secure: v1:def}}\n"
        f"    servers: [{{name: a, host: 10.0.0.1, hostKey: '{HOST_KEY}'}}]\n"
        "  ai-platform:csghub: {enabled: false}\n  ai-platform:gateway: {enabled: false}\n"
    )
    with pytest.raises(ConfigError) as err:
        from_stack_file(stack)
    assert [str(p) for p in err.value.problems] == [
        "ai-platform:cluster.ssh.user: is encrypted (secure:) but is not a secret field: it would reach resources in plain text"
    ]


# Hypothesis: any out-of-range port, anywhere a port is configured, names that key.
@settings(max_examples=40, deadline=None)
@given(
    where=st.sampled_from(["cluster.ssh.port", "cluster.servers.0.port", "cluster.agents.0.port"]),
    port=st.one_of(st.integers(max_value=0), st.integers(min_value=65536)),
)
def test_generated_bad_ports(where: str, port: int) -> None:
    key = where.replace(".0.", "[0].")
    assert any(m.startswith(f"ai-platform:{key}") for m in problems(with_(cluster_only(), where, port)))


@settings(max_examples=40, deadline=None)
@given(
    name=st.text(min_size=1, max_size=70).filter(
        lambda s: not __import__("re").fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", s)
    )
)
def test_generated_bad_node_names(name: str) -> None:
    msgs = problems(with_(cluster_only(), "cluster.agents.0.name", name))
    assert any(m.startswith("ai-platform:cluster.agents[0].name") for m in msgs)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(min_value=1, max_value=4), dup=st.integers(min_value=0, max_value=3))
def test_generated_duplicate_names(n: int, dup: int) -> None:
    raw = cluster_only(servers=1, agents=n)
    i = dup % n
    raw["cluster"]["agents"][i]["name"] = "s0"
    assert any(m.startswith(f"ai-platform:cluster.agents[{i}].name: duplicate node name 's0'") for m in problems(raw))


def test_bad_config_registers_nothing() -> None:
    raw = with_(cluster_only(), "cluster.servers.0.host", "bad host")
    with pytest.raises(pulumi.RunError) as err:
        run_program(raw)
    assert "ai-platform:cluster.servers[0].host" in str(err.value)


def test_bad_config_registers_no_resource(registered: list[str]) -> None:
    with pytest.raises(pulumi.RunError):
        run_program(with_(cluster_only(), "cluster.k3s.version", "latest"))
    assert registered == []


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stacks_cli(["check", str(ROOT / "Pulumi.dev.yaml")]) == 0
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  ai-platform:cluster:\n    servers: [{name: X, host: 1.2.3.4}]\n")
    assert stacks_cli(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "ai-platform:cluster.servers[0].name" in err


def test_node_helper_builds_valid_nodes() -> None:
    raw = cluster_only()
    raw["cluster"]["agents"].append(node("a9", "10.9.9.9"))
    validate(raw, ROOT)


# -- issue 16: every class of bad input refused with its key ------------------------------------

BAD_CLASSES: list[tuple[str, Any, str]] = [
    ("cluster.agents.0.name", "a0\n", "cluster.agents[0].name"),  # `$` would accept a trailing newline
    ("cluster.servers.0.host", "fe80::1%eth0\n}", "cluster.servers[0].host"),  # IPv6 scope id
    ("cluster.servers.0.nodeIp", "fe80::1%$(id)", "cluster.servers[0].nodeIp"),
    ("cluster.servers.0.host", "\u212aube.example.com", "cluster.servers[0].host"),  # KELVIN SIGN lower-cases to k
    ("cluster.servers.0.host", "999.999.999.999", "cluster.servers[0].host"),
    ("cluster.servers.0.flannelIface", "eth0; reboot", "cluster.servers[0].flannelIface"),
    ("cluster.servers.0.labels", {"tier": "a b"}, "cluster.servers[0].labels"),
    ("cluster.servers.0.labels", {"-bad-": "x"}, "cluster.servers[0].labels"),
    ("cluster.servers.0.taints", ["k=v w:NoSchedule"], "cluster.servers[0].taints[0]"),
    ("cluster.servers.0.extraArgs", ["--node-name=other"], "cluster.servers[0].extraArgs"),
    ("cluster.servers.0.extraArgs", ["--server=https://evil.example.com:6443"], "cluster.servers[0].extraArgs"),
    ("cluster.servers.0.extraArgs", ["--write-kubeconfig-mode=0644"], "cluster.servers[0].extraArgs"),
    ("cluster.servers.0.extraArgs", ["--token-file=/tmp/t"], "cluster.servers[0].extraArgs"),
    ("cluster.k3s.tlsSan", ["a b"], "cluster.k3s.tlsSan[0]"),
    ("cluster.k3s.registries", {"mirrors": {"docker.io": {"endpoints": ["ftp://m"]}}}, "cluster.k3s.registries"),
    ("cluster.k3s.registries", {"mirrors": {"docker.io\n": {"endpoints": ["https://m"]}}}, "cluster.k3s.registries"),
    (
        "cluster.k3s.registries",
        {"mirrors": {"docker.io": {"endpoints": ["https://m"], "rewrite": {"(": "x"}}}},
        "cluster.k3s.registries",
    ),
    ("cluster.k3s.readyTimeoutSeconds", 1e30, "cluster.k3s.readyTimeoutSeconds"),
    ("cluster.k3s.serviceCidr", "10.42.128.0/17", "cluster.k3s.serviceCidr"),  # overlaps the pod network
    ("cluster.servers.0.host", "10.42.0.5", "cluster.servers[0].host"),  # inside the pod network
    ("cluster.ssh.bastion", {"host": "10.9.9.9"}, "cluster.ssh.bastion.hostKey"),  # unpinned bastion
    ("storage.localStatic.diskDir", "/mnt/disks x", "storage.localStatic.diskDir"),  # would split an fstab line
    ("storage.localStatic.diskDir", "/mnt/../etc", "storage.localStatic.diskDir"),
    ("storage.localStatic.diskDir", "/etc", "storage.localStatic.diskDir"),
    ("csghub.image.tag", "latest", "csghub.image.tag"),
    ("csghub.namespace", "CSGHub", "csghub.namespace"),
    ("csghub.namespace", "kube-system", "csghub.namespace"),
    ("dataflow.externalUrl", "http://hub.example.com", "dataflow.externalUrl"),  # https only
    ("csghub.chart.repository", "https://user:pw@charts.example.com", "csghub.chart.repository"),
    ("csghub.services.postgresql", {"host": "pg", "user": "u", "password": ""}, "csghub.services.postgresql.password"),
]


@pytest.mark.parametrize(("path", "value", "key"), BAD_CLASSES, ids=[k for _, _, k in BAD_CLASSES])
def test_bad_input_classes_are_refused_naming_the_key(path: str, value: Any, key: str) -> None:
    raw = cluster_only()
    raw.update({"csghub": {"enabled": False}, "dataflow": {"enabled": False}})
    if path.startswith(("csghub.", "dataflow.")):
        raw.update({"storage": {}, "knative": {}, "gateway": {}, "csghub": {"domain": "ai.example.com"}})
    if path.startswith("dataflow."):
        raw["dataflow"] = {"enabled": True, "persistence": {"storageClass": "x"}}
    msgs = problems(with_(raw, path, value))
    assert any(m.startswith(f"ai-platform:{key}") for m in msgs), msgs


def test_one_machine_spelled_two_ways_is_a_duplicate() -> None:
    raw = cluster_only(servers=1, agents=1)
    raw["cluster"]["servers"][0]["host"] = "2001:db8::10"
    raw["cluster"]["agents"][0]["host"] = "2001:DB8:0:0::10"
    assert any("cluster.agents[0].host: duplicate address 2001:db8::10:22" in m for m in problems(raw))


def test_two_layers_in_one_namespace_are_refused() -> None:
    raw = cluster_only()
    raw.update({"storage": {}, "knative": {}, "gateway": {}, "csghub": {"domain": "ai.example.com"}})
    raw["openhydra"] = {"enabled": False}
    raw["octopus"] = {
        "namespace": "csghub",
        "repo": {"url": "https://harbor.example.com/chartrepo/octopus"},
        "nodes": ["a0"],
        "volumes": {
            v: {"size": "1Gi", "source": {"nfs": {"server": "10.0.0.5", "path": f"/e/{v}"}}}
            for v in ("minio", "mysql", "redis", "logger", "logstash")
        },
    }
    assert any(
        m.startswith("ai-platform:octopus.namespace: namespace 'csghub' is also csghub.namespace's")
        for m in problems(raw)
    )


def test_existing_cluster_kubeconfig_must_be_one() -> None:
    for bad, why in (("", "at least 1"), ("{", "is not YAML"), ("kind: Config\n", "has no clusters")):
        raw = {"cluster": {"kubeconfig": bad}, "storage": {"enabled": False}, "knative": {"enabled": False}}
        raw.update({"gateway": {"enabled": False}, "csghub": {"enabled": False}})
        msgs = problems(raw)
        assert any(m.startswith("ai-platform:cluster.kubeconfig") and why in m for m in msgs), (bad, msgs)
    creds = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://admin:pw@k:6443'}}]\n"
    raw = {"cluster": {"kubeconfig": creds}, "storage": {"enabled": False}, "knative": {"enabled": False}}
    raw.update({"gateway": {"enabled": False}, "csghub": {"enabled": False}})
    msgs = problems(raw)
    assert any("credentials in a server URL" in m for m in msgs) and not any("pw" in m for m in msgs), msgs


STACK_FILES = {
    "duplicate key": ("config:\n  ai-platform:cluster: {}\n  ai-platform:cluster: {}\n", "appears twice"),
    "misspelled namespace": (
        "config:\n  ai-platfrom:octopus: {enabled: true}\n",
        "unknown config namespace 'ai-platfrom'",
    ),
    "top level a list": ("- config\n", "the top level must be a mapping"),
    "config a string": ("config: yes\n", "`config:` must be a mapping"),
    "a null layer": ("config:\n  ai-platform:octopus: null\n", "ai-platform:octopus: is null"),
}


@pytest.mark.parametrize("case", sorted(STACK_FILES))
def test_broken_stack_files_are_refused_without_a_traceback(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = STACK_FILES[case]
    f = tmp_path / "Pulumi.x.yaml"
    f.write_text(text)
    assert stacks_cli(["check", str(f)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_null_layer_means_the_same_to_the_program() -> None:
    raw = cluster_only()
    raw["octopus"] = None
    with pytest.raises(pulumi.RunError, match=r"ai-platform:octopus: is null"):
        run_program(raw)


def test_plain_secrets_warn_and_strict_refuses_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "Pulumi.x.yaml"
    f.write_text(
        "config:\n  ai-platform:cluster:\n    ssh: {privateKey: plain-key-text}\n"
        f"    servers: [{{name: a, host: 10.0.0.1, hostKey: '{HOST_KEY}'}}]\n"
        "  ai-platform:csghub: {enabled: false}\n  ai-platform:gateway: {enabled: false}\n"
        "  ai-platform:knative: {enabled: false}\n"
    )
    assert stacks_cli(["check", str(f)]) == 0
    assert "cluster.ssh.privateKey: a secret given in plain text" in capsys.readouterr().err
    assert stacks_cli(["check", "--strict", str(f)]) == 1
    err = capsys.readouterr().err
    assert "cluster.ssh.privateKey: a secret given in plain text" in err and "plain-key-text" not in err


def test_strict_check_refuses_absent_provisioner_files_review_lists_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prod = tmp_path / "Pulumi.prod.yaml"
    prod.write_text((ROOT / "Pulumi.prod.yaml").read_text())
    assert stacks_cli(["check", str(prod)]) == 0
    out = capsys.readouterr().out
    assert "cluster.k3s.airgap.dir: airgap/k3s-bundle — absent here — required at pulumi up" in out
    assert stacks_cli(["check", "--strict", str(prod)]) == 1
    assert "ai-platform:cluster.k3s.airgap.dir: file not found on the provisioner" in capsys.readouterr().err
