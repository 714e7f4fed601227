"""What a real cluster and the real CSGHub 1.17 chart need, each checked where the program
produces it (issue 15): host names and endpoints as the chart computes them, port 22 on
ServiceLB, where open-hydra's server may run, manifest refs that exist, the Harbor CA and
pull login on the nodes, Octopus' own volumes."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.csghub import endpoints
from config.csghub import Csghub
from config.gateway import Gateway
from config.load import ConfigError, validate
from config.openhydra import OpenhydraManifests
from config.stack import OPENHYDRA_NODE_LABEL
from stacks import mockrun
from tests.conftest import ROOT, SHARED, cluster_only, node, platform, run_program

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def problems(raw: dict[str, Any], base: Path = ROOT) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate(raw, base)
    return [str(p) for p in err.value.problems]


def payload_of(rec: mockrun.Recording, name: str) -> dict[str, str]:
    """A remote command's stdin payload, decoded (key=<base64> lines)."""
    stdin = rec.get(name, "command:remote:Command").raw_inputs["stdin"]
    out = {}
    for line in stdin.splitlines():
        key, _, value = line.partition("=")
        out[key] = base64.b64decode(value).decode()
    return out


# -- 1. CSGHub host names and endpoints, as chart 1.17 computes them ----------------------------

# (domain, public, gateway) → portal URL, casdoor URL, minio URL, registry host[:port], spaces
ENDPOINTS = [
    # 3+ labels: <base> is the domain minus its first label
    (
        "ai.example.org",
        None,
        {"serviceType": "LoadBalancer", "tls": {"certificate": PEM, "key": "k"}},
        ("https://ai.example.org", "https://casdoor.example.org", "https://minio.example.org", "ai.example.org"),
        "*.ai.example.org",
    ),
    (
        "ai.example.org",
        None,
        {"serviceType": "NodePort"},
        (
            "http://ai.example.org:30080",
            "http://casdoor.example.org:30080",
            "http://minio.example.org:30080",
            "ai.example.org:30080",
        ),
        "*.ai.example.org",
    ),
    (
        "hub.dept.example.org",
        None,
        {"serviceType": "NodePort", "tls": {"certificate": PEM, "key": "k"}},
        (
            "https://hub.dept.example.org:30443",
            "https://casdoor.dept.example.org:30443",
            "https://minio.dept.example.org:30443",
            "hub.dept.example.org:30443",
        ),
        "*.hub.dept.example.org",
    ),
    # 2 labels: <base> is the domain itself; spaces under csghub.<domain>
    (
        "example.com",
        None,
        {"serviceType": "NodePort"},
        (
            "http://example.com:30080",
            "http://casdoor.example.com:30080",
            "http://minio.example.com:30080",
            "example.com:30080",
        ),
        "*.csghub.example.com",
    ),
    (
        "example.com",
        None,
        {"serviceType": "LoadBalancer"},
        ("http://example.com", "http://casdoor.example.com", "http://minio.example.com", "example.com"),
        "*.csghub.example.com",
    ),
    # global.gateway.external.public overrides where spaces live
    (
        "ai.example.org",
        "apps.example.net",
        {"serviceType": "LoadBalancer"},
        ("http://ai.example.org", "http://casdoor.example.org", "http://minio.example.org", "ai.example.org"),
        "*.apps.example.net",
    ),
]


@pytest.mark.parametrize(("domain", "public", "gateway", "urls", "spaces"), ENDPOINTS)
def test_endpoints_as_the_chart_computes_them(
    domain: str, public: str | None, gateway: dict[str, Any], urls: tuple[str, ...], spaces: str
) -> None:
    ep = endpoints(Csghub(domain=domain, public_domain=public), Gateway.model_validate(gateway))
    assert (ep.url("portal"), ep.url("casdoor"), ep.url("minio"), ep.registry) == urls
    assert ep.spaces == spaces
    assert ep.names()[0] == domain  # the portal is served at the domain itself


def test_loki_and_prometheus_have_names_only_when_their_gateway_is_on() -> None:
    off = endpoints(Csghub(domain="ai.example.org"), Gateway())
    assert set(off.hosts) == {"portal", "casdoor", "minio"}
    on = endpoints(Csghub(domain="ai.example.org", values={"loki": {"gateway": {"enabled": True}}}), Gateway())
    assert on.hosts["loki"] == "loki.example.org"


def full(domain: str = "ai.example.org") -> dict[str, Any]:
    raw = platform(csghub={"domain": domain}, dataflow={"enabled": True, "persistence": {"storageClass": "x"}})
    return raw


def test_every_consumer_uses_the_same_names() -> None:
    raw = full()
    rec = mockrun.run(raw, "test", ROOT, keep_secrets=True)
    ep = endpoints(Csghub(domain="ai.example.org"), Gateway())
    want = {"portal": ep.url("portal"), "casdoor": ep.url("casdoor"), "minio": ep.url("minio")}
    assert {k: rec.outputs["urls"][k] for k in want} == want
    assert rec.outputs["urls"]["dataflow"] == ep.url("portal")  # Dataflow's external URL
    # CoreDNS: the zone the names live in, every name the HTTPRoutes serve, and the spaces wildcard
    corefile = rec.get("csghub-coredns-custom", "kubernetes:core/v1:ConfigMap").raw_inputs["data"]
    block = corefile["example.org.server"]
    assert "10.0.0.10 ai.example.org casdoor.example.org minio.example.org\n" in block
    assert 'match "^[^.]+[.]ai[.]example[.]org[.]$"' in block
    for node_name in ("s0", "a0", "a1"):
        sent = payload_of(rec, f"k3s-{node_name}-registries")
        assert sent["hosts"] == "10.0.0.10 ai.example.org casdoor.example.org minio.example.org\n"
        registries = yaml.safe_load(sent["registries"])
        # keyed exactly as the images name the registry: the portal's host:port
        assert registries["mirrors"]["ai.example.org:30080"] == {"endpoint": ["http://ai.example.org:30080"]}
        assert registries["configs"]["ai.example.org:30080"]["auth"]["username"] == "registry"
        assert "registry.ai.example.org" not in sent["registries"]


# -- 2. port 22 on every node under ServiceLB ---------------------------------------------------


def lb(**cluster: Any) -> dict[str, Any]:
    raw = platform(gateway={"serviceType": "LoadBalancer"})
    raw["cluster"].update(cluster)
    return raw


def test_loadbalancer_gateway_on_servicelb_with_nodes_on_port_22_is_refused() -> None:
    msgs = problems(lb())
    assert any(
        m.startswith("ai-platform:gateway.serviceType: LoadBalancer on K3s ServiceLB takes port 22")
        and "cluster.ssh.port" in m
        and "NodePort" in m
        and "servicelb" in m
        for m in msgs
    ), msgs


def test_a_node_overriding_its_port_to_22_is_named() -> None:
    raw = lb()
    raw["cluster"]["ssh"]["port"] = 2222
    raw["cluster"]["agents"][1]["port"] = 22
    assert any("cluster.agents[1].port" in m for m in problems(raw))


@pytest.mark.parametrize(
    "fix",
    [
        lambda r: r["cluster"]["ssh"].update(port=2222),
        lambda r: r["gateway"].update(serviceType="NodePort"),
        lambda r: r["cluster"]["k3s"].update(disable=["traefik", "servicelb"]),
    ],
    ids=["ssh-on-2222", "nodeport", "servicelb-off"],
)
def test_each_way_out_is_accepted(fix: Any) -> None:
    raw = lb()
    fix(raw)
    validate(raw, ROOT)


def test_prod_keeps_its_sshd_off_port_22() -> None:
    from config.load import read_stack_file

    raw, _ = read_stack_file(ROOT / "Pulumi.prod.yaml")
    cfg = raw["cluster"]
    assert raw["gateway"]["serviceType"] == "LoadBalancer"
    assert cfg["ssh"]["port"] != 22


# -- 3. open-hydra's server runs where its host directories are ------------------------------------


def hydra_on_tainted_gpu_node() -> dict[str, Any]:
    raw = cluster_only()
    raw["cluster"]["agents"].append(node("gpu0", "10.0.1.30", gpu=True, taints=["nvidia.com/gpu=true:NoSchedule"]))
    raw["openhydra"] = {"enabled": True, "nodes": ["gpu0"]}
    return raw


def test_server_is_pinned_to_the_nodes_with_the_directories_tolerating_their_taints() -> None:
    rec = run_program(hydra_on_tainted_gpu_node())
    dirs = [d.name for d in rec.by_type("command:remote:Command") if d.name.endswith("-host-dirs")]
    assert dirs == ["openhydra-gpu0-host-dirs"]
    label = rec.get("k3s-gpu0-labels", "kubernetes:core/v1:NodePatch")
    assert label.inputs["metadata"]["labels"][OPENHYDRA_NODE_LABEL] == "true"
    assert not [d for d in rec.by_type("kubernetes:core/v1:NodePatch") if d.name != "k3s-gpu0-labels"]
    pod = rec.get("openhydra-server-deployment", "kubernetes:apps/v1:DeploymentPatch").inputs["spec"]["template"][
        "spec"
    ]
    assert pod["nodeSelector"] == {OPENHYDRA_NODE_LABEL: "true"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]


def test_every_node_repelling_pods_without_naming_nodes_is_refused() -> None:
    raw = cluster_only(servers=1, agents=0)
    raw["cluster"]["servers"][0]["taints"] = ["dedicated=infra:NoSchedule"]
    raw["openhydra"] = {"enabled": True}
    assert any(m.startswith("ai-platform:openhydra.nodes: every node repels pods") for m in problems(raw))


def test_on_an_existing_cluster_the_kubelet_makes_the_directories() -> None:
    raw = {
        "cluster": {
            "kubeconfig": "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://10.9.0.1:6443'}}]\n"
        },
        "storage": {"enabled": False},
        "knative": {"enabled": False},
        "gateway": {"enabled": False},
        "csghub": {"enabled": False},
        "openhydra": {"enabled": True, "nodes": ["worker-3"]},
    }
    rec = run_program(raw)
    pod = rec.get("openhydra-server-deployment").inputs["spec"]["template"]["spec"]
    assert {v["hostPath"]["type"] for v in pod["volumes"] if "hostPath" in v} == {"DirectoryOrCreate"}
    assert pod["nodeSelector"] == {OPENHYDRA_NODE_LABEL: "true"}
    assert rec.get("k3s-worker-3-labels").inputs["metadata"]["labels"] == {OPENHYDRA_NODE_LABEL: "true"}


# -- 4. pinned manifest refs exist ---------------------------------------------------------------------


def existing_refs() -> dict[str, set[str]]:
    """repository → refs that exist, from ../shared/manifests/README.md's table."""
    refs: dict[str, set[str]] = {}
    for line in (SHARED / "manifests" / "README.md").read_text().splitlines():
        m = re.match(r"\| `[^`]+/` \| (\S+) `deploy/` \| (tag|branch) `([^`]+)`", line)
        if m and m.group(2) == "tag":
            refs.setdefault(m.group(1), set()).add(m.group(3))
    return refs


@pytest.mark.skipif(not (SHARED / "manifests").is_dir(), reason="../shared/manifests is not beside this checkout")
def test_open_hydra_manifests_pin_refs_that_exist() -> None:
    refs = existing_refs()
    assert refs["openhydra/open-hydra"] == {"v0.1", "v2.0"}
    for name, source in OpenhydraManifests().model_dump().items():
        url = source["url"]
        owner_repo_ref = url.removeprefix("https://raw.githubusercontent.com/").split("/")
        repo, ref = "/".join(owner_repo_ref[:2]), owner_repo_ref[2]
        if not repo.startswith("openhydra/"):
            continue
        if re.fullmatch(r"[0-9a-f]{40}", ref):  # open-hydra-ui has no tags: a commit
            continue
        assert ref in refs.get(repo, set()), f"{name}: {url} pins {ref!r}, which {repo} does not have"
        folder = SHARED / "manifests" / f"{repo.split('/')[1]}-{ref}"
        assert (folder / owner_repo_ref[-1]).is_file(), f"{name}: no {owner_repo_ref[-1]} at {repo}@{ref}"


def test_a_branch_ref_is_refused() -> None:
    raw = cluster_only()
    raw["openhydra"] = {
        "enabled": True,
        "manifests": {
            "ui": {"url": "https://raw.githubusercontent.com/openhydra/open-hydra-ui/main/deploy/deploy.yaml"}
        },
    }
    assert any("points at branch 'main'" in m for m in problems(raw))


# -- 5. Harbor's CA and pull login reach the nodes ---------------------------------------------------------


def test_harbor_ca_and_credentials_reach_every_nodes_registries(tmp_path: Path) -> None:
    (tmp_path / "harbor-ca.crt").write_text(PEM)
    raw = cluster_only()
    raw["octopus"] = {
        "repo": {
            "url": "https://harbor.example.org/chartrepo/octopus",
            "caFile": "harbor-ca.crt",
            "username": "robot-octopus",
            "password": "harbor-pull-pw",
        },
        "imageRegistry": "harbor.example.org",
        "nodes": ["a0"],
        "volumes": {
            v: {"size": "1Gi", "source": {"nfs": {"server": "10.0.0.50", "path": f"/export/{v}"}}}
            for v in ("minio", "mysql", "redis", "logger", "logstash")
        },
    }
    rec = mockrun.run(raw, "test", tmp_path, keep_secrets=True)
    for name in ("s0", "a0", "a1"):
        sent = payload_of(rec, f"k3s-{name}-registries")
        doc = yaml.safe_load(sent["registries"])
        harbor = doc["configs"]["harbor.example.org"]
        assert harbor["auth"] == {"username": "robot-octopus", "password": "harbor-pull-pw"}
        ca = harbor["tls"]["ca_file"]
        assert ca == "/etc/rancher/k3s/ai-platform-ca/harbor.example.org.crt"
        path, b64 = sent["certs"].strip().split("\t")
        assert path == ca and base64.b64decode(b64).decode() == PEM
    # NFS volumes: every node's install checks for the NFS client
    assert "nfs=true" in rec.get("k3s-a1-install").inputs["create"]


def test_node_ca_path_is_a_plain_file_name_for_host_and_port() -> None:
    from components.k3s import ca_path

    assert ca_path("harbor.example.org:8443") == "/etc/rancher/k3s/ai-platform-ca/harbor.example.org_8443.crt"
    assert ca_path("[2001:db8::1]:5000") == "/etc/rancher/k3s/ai-platform-ca/2001_db8__1_5000.crt"
