"""Octopus under mocks: static volumes, the Harbor release, credentials, the chart check."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.octopus import CREDENTIALS, removed_api_problems
from stacks import rules
from stacks.mockrun import SECRET, Recording
from tests.conftest import cluster_only, run_program, with_

PV = "kubernetes:core/v1:PersistentVolume"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
RELEASE = "kubernetes:helm.sh/v3:Release"
PASSWORD = "random:index/randomPassword:RandomPassword"
REPO_PASSWORD = "repo-password-from-config-7f3a"

VOLUMES = {
    "minio": {"size": "50Gi", "source": {"hostPath": {"path": "/data/octopus/minio", "type": "DirectoryOrCreate"}}},
    "mysql": {"size": "20Gi", "source": {"nfs": {"server": "10.0.0.50", "path": "/export/octopus/mysql"}}},
    "redis": {"size": "5Gi", "source": {"csi": {"driver": "nfs.csi.k8s.io", "volumeHandle": "octopus-redis"}}},
    "logger": {"size": "10Gi", "source": {"iscsi": {"targetPortal": "10.0.0.60:3260", "iqn": "iqn.x:log", "lun": 0}}},
    "logstash": {"size": "10Gi", "source": {"nfs": {"server": "10.0.0.50", "path": "/export/octopus/logstash"}}},
}


def octopus(tmp_path: Path | None = None, **extra: Any) -> dict[str, Any]:
    raw = cluster_only()
    repo: dict[str, Any] = {
        "url": "https://harbor.example.com:8443/chartrepo/octopus",
        "username": "robot-octopus",
        "password": REPO_PASSWORD,
    }
    if tmp_path is not None:
        for name in ("ca.crt", "client.crt", "client.key"):
            (tmp_path / name).write_text("stand-in\n")
        repo |= {
            "caFile": str(tmp_path / "ca.crt"),
            "certFile": str(tmp_path / "client.crt"),
            "keyFile": str(tmp_path / "client.key"),
        }
    raw["octopus"] = {"repo": repo, "nodes": ["a0"], "volumes": VOLUMES, **extra}
    return raw


def values_of(rec: Recording) -> dict[str, Any]:
    values = rec.get("octopus-release", RELEASE).inputs["values"]
    assert isinstance(values, dict), "the values must stay readable, with secrets masked leaf by leaf"
    return values


def leaf(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def strings(value: Any) -> list[str]:
    return [v for _, v in rules.leaves(value) if isinstance(v, str)]


# -- volumes -----------------------------------------------------------------------------


def test_the_charts_own_volumes_get_the_configured_sources_and_no_claim_of_ours() -> None:
    # The chart renders octopus-<name>-pv and octopus-<name>-pvc itself (templates/storage):
    # a claim of ours with that name would make Helm refuse "exists and cannot be imported".
    rec = run_program(octopus())
    assert rec.by_type(PV) == [] and rec.by_type(PVC) == []
    values = values_of(rec)
    for svc, want in VOLUMES.items():
        pv = values["pv"][svc]
        kind = next(iter(want["source"]))
        assert pv["requests"] == want["size"] and values["pvc"][svc]["requests"] == want["size"]
        assert pv["storageType"][kind] == want["source"][kind], svc
        # the chart's claim names no class: admission gives it the default one, so the PV must match
        assert pv["storageType"]["storageClassName"] == "local-path"
        # pre-bound to its claim: bound by the PV controller, not left to a scheduler race
        assert pv["storageType"]["claimRef"] == {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": "octopus",
            "name": f"octopus-{svc}-pvc",
        }
    assert values["minio"]["persistence"] == {"existingClaim": "octopus-minio-pvc", "size": "50Gi"}
    assert values["mysql"]["primary"]["persistence"] == {"existingClaim": "octopus-mysql-pvc", "size": "20Gi"}
    assert values["redis"]["master"]["persistence"] == {"existingClaim": "octopus-redis-pvc", "size": "5Gi"}
    assert rec.get("octopus-release", RELEASE).protect  # it holds the volumes


def test_node_local_volumes_are_pinned_to_the_first_octopus_node() -> None:
    values = values_of(run_program(octopus()))
    assert values["pv"]["minio"]["storageType"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["a0"]}]}
    ]
    assert "nodeAffinity" not in values["pv"]["mysql"]["storageType"]


def test_ingress_is_off_the_host_network_behind_its_nodeports() -> None:
    values = values_of(run_program(octopus()))
    ingress = values["nginx-ingress-controller"]
    assert ingress["hostNetwork"] is False
    assert ingress["service"] == {"type": "NodePort", "nodePorts": {"http": 30180, "https": 30543}}
    assert values["sftpgo"]["service"]["ports"]["sftp"]["nodePort"] == 30122


def test_a_node_local_volume_without_octopus_nodes_is_refused() -> None:
    raw = octopus()
    raw["cluster"] = {
        "kubeconfig": "apiVersion: v1\nkind: Config\nclusters: [{name: k, cluster: {server: 'https://k:6443'}}]\n"
    }
    raw["octopus"]["nodes"] = []
    raw["storage"] = {"enabled": False}
    with pytest.raises(
        pulumi.RunError, match=r"octopus\.volumes\.minio\.source: a node-local volume needs octopus.nodes"
    ):
        run_program(raw)


# -- the release ---------------------------------------------------------------------------


def test_release_comes_from_the_harbor_repository_pinned_and_protected(tmp_path: Path) -> None:
    rec = run_program(octopus(tmp_path))
    release = rec.get("octopus-release", RELEASE)
    assert release.inputs["chart"] == "octopus"
    assert release.inputs["version"] == "0.1.0"
    assert release.inputs["name"] == "octopus"
    assert release.inputs["namespace"] == "octopus"
    assert release.inputs["repositoryOpts"] == {
        "repo": "https://harbor.example.com:8443/chartrepo/octopus",
        "caFile": str(tmp_path / "ca.crt"),
        "certFile": str(tmp_path / "client.crt"),
        "keyFile": str(tmp_path / "client.key"),
        "username": "robot-octopus",
        "password": SECRET,
    }
    assert release.protect
    assert release.provider == "pulumi:providers:kubernetes::k3s-provider"
    assert "kubernetes:core/v1:Namespace::octopus-namespace" in release.dependencies
    ns = rec.get("octopus-namespace", "kubernetes:core/v1:Namespace")
    assert ns.inputs["metadata"]["name"] == "octopus"
    assert REPO_PASSWORD not in repr([d.as_json() for d in rec.declared])


def test_a_missing_ca_file_is_refused_with_its_key() -> None:
    raw = with_(octopus(), "octopus.repo.caFile", "/nonexistent/harbor-ca.crt")
    with pytest.raises(pulumi.RunError, match=r"octopus\.repo\.caFile: file not found"):
        run_program(raw)


def test_values_carry_the_seed_keys() -> None:
    raw = octopus(
        imageRegistry="harbor.example.com:8443",
        imagePathname="octopus",
        ingressPaths={"openaiportal": "/octopus", "minioWeb": "/m", "logger": "/logs", "grafana": "/g"},
        nodePorts={"sftpgo": 30222, "minio": 31411, "mysql": 30436},
    )
    values = values_of(run_program(raw))
    assert values["global"]["image"]["repository"] == {"address": "harbor.example.com:8443", "pathname": "octopus"}
    assert values["global"]["nodeSelector"] == {"octopus.openi.pcl.cn/node": "server"}
    assert values["nginx-ingress-controller"]["nodeSelector"] == {"octopus.openi.pcl.cn/node": "server"}
    assert values["ingress"] == {"openaiportalPath": "/octopus", "minioPath": {"web": "/m"}, "loggerHttpdPath": "/logs"}
    assert values["logger"]["httpd"]["ingress"]["path"] == "/logs"
    assert values["grafana"]["ingress"]["path"] == "/g"
    assert values["minio"]["service"]["nodePort"] == 31411
    assert values["mysql"]["primary"]["service"]["nodePort"] == 30436
    assert values["sftpgo"]["service"]["ports"]["sftp"]["nodePort"] == 30222
    assert values["baseserver"]["data"]["harbor"]["host"] == "harbor.example.com:8443"
    assert values["baseserver"]["data"]["harbor"]["useSSL"] is True


def test_bitnami_images_come_from_bitnamilegacy_or_the_configured_repository() -> None:
    values = values_of(run_program(octopus()))
    assert values["minio"]["image"]["repository"] == "bitnamilegacy/minio"
    assert values["mysql"]["image"]["repository"] == "bitnamilegacy/mysql"
    assert values["redis"]["image"]["repository"] == "bitnamilegacy/redis"
    assert values["nginx-ingress-controller"]["image"]["repository"] == "bitnamilegacy/nginx-ingress-controller"
    assert values["mysql"]["volumePermissions"]["image"]["repository"] == "bitnamilegacy/bitnami-shell"
    values = values_of(run_program(octopus(bitnamiRepository="mirror/bitnami")))
    assert values["redis"]["image"]["repository"] == "mirror/bitnami/redis"


def test_pass_through_values_merge_last() -> None:
    values = values_of(
        run_program(octopus(values={"taskset": {"replicaCount": 2}, "minio": {"service": {"port": 9100}}}))
    )
    assert values["taskset"]["replicaCount"] == 2
    assert values["taskset"]["adminToken"] == SECRET
    assert values["minio"]["service"] == {"nodePort": 31311, "port": 9100}


def test_unknown_ingress_path_key_is_refused() -> None:
    with pytest.raises(pulumi.RunError, match=r"octopus\.ingressPaths\.portal: Input should be 'adminserver'"):
        run_program(octopus(ingressPaths={"portal": "/"}))


# -- credentials ------------------------------------------------------------------------------


def test_every_default_credential_is_generated_secret_and_never_a_seed_default() -> None:
    rec = run_program(octopus())
    values = values_of(rec)
    generated = {d.name: d for d in rec.by_type(PASSWORD) if d.parent == "ai-platform:index:Octopus::octopus"}
    for field, (length, keys) in CREDENTIALS.items():
        resource = generated[f"octopus-{field.replace('_', '-')}"]
        assert resource.inputs["length"] == length
        assert "result" in resource.additional_secret_outputs
        for key in keys:
            assert leaf(values, key) == SECRET, key
    assert len(generated) == len(CREDENTIALS)
    assert values["baseserver"]["administrator"]["username"] == "admin"
    assert values["grafana"]["env"]["GF_SECURITY_ADMIN_USER"] == "admin"
    seeds = (*rules.SEED_CREDENTIALS_ANYWHERE, "abcde", "123456", "root", "OpenI2018")
    ours = [d.as_json() for d in rec.declared if d.parent == "ai-platform:index:Octopus::octopus"]
    for text in strings(ours):
        assert not any(s == text or (len(s) > 6 and s in text) for s in seeds), text
    assert rules.check(rec) == []


def test_configured_credentials_replace_the_generated_ones() -> None:
    raw = octopus(credentials={"adminUser": "ops", "adminPassword": "admin-pass-from-config", "redisPassword": "r-x"})
    rec = run_program(raw)
    names = {d.name for d in rec.by_type(PASSWORD)}
    assert "octopus-admin-password" not in names and "octopus-redis-password" not in names
    assert "octopus-grafana-password" in names
    values = values_of(rec)
    assert values["baseserver"]["administrator"] == {"username": "ops", "password": SECRET}
    assert values["openaiserver"]["data"]["redis"]["password"] == SECRET
    assert "admin-pass-from-config" not in repr([d.as_json() for d in rec.declared])
    assert rec.outputs["credentials"]["octopus"] == {"username": "ops", "password": SECRET}


def test_outputs_are_the_portal_and_grafana_urls_and_secret_admin() -> None:
    rec = run_program(octopus(ingressPaths={"grafana": "/monitor"}))
    # a0, the node carrying Octopus, at the ingress controller's NodePort
    assert rec.outputs["urls"]["octopus"] == "http://10.0.1.10:30180/"
    assert rec.outputs["urls"]["grafana"] == "http://10.0.1.10:30180/monitor"
    assert rec.outputs["credentials"]["octopus"] == {"username": "admin", "password": SECRET}


def test_layer_off_declares_nothing() -> None:
    for raw in (cluster_only(), octopus(enabled=False)):
        rec = run_program(raw)
        assert not [d for d in rec.declared if "octopus" in d.name], raw.get("octopus")


# -- the chart's API versions ---------------------------------------------------------------


def test_removed_api_versions_are_named_for_the_clusters_version() -> None:
    objects = [
        {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "portal"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1beta1", "kind": "ClusterRole", "metadata": {"name": "r"}},
        {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "fine"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fine"}},
    ]
    assert removed_api_problems(objects, "1.21") == []
    on_122 = removed_api_problems(objects, "1.22")
    assert on_122 == [
        "ClusterRole r: rbac.authorization.k8s.io/v1beta1 was removed in Kubernetes 1.22 "
        "(use rbac.authorization.k8s.io/v1)",
        "Ingress portal: extensions/v1beta1 was removed in Kubernetes 1.22 (use networking.k8s.io/v1)",
    ]
    assert len(removed_api_problems(objects, "1.30")) == 3


def local_chart(tmp_path: Path, version: str = "0.1.0") -> Path:
    tgz = tmp_path / f"octopus-{version}.tgz"
    data = yaml.safe_dump({"apiVersion": "v2", "name": "octopus", "version": version}).encode()
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("octopus/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return tgz


def fake_helm(tmp_path: Path, rendered: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `helm` on PATH that records its arguments and prints `rendered`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    out = tmp_path / "rendered.yaml"
    out.write_text(yaml.safe_dump_all(rendered))
    helm = bin_dir / "helm"
    helm.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/helm-args\ncat {out}\n')
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return tmp_path / "helm-args"


def test_local_chart_rendering_removed_apis_is_refused_before_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = local_chart(tmp_path)
    args = fake_helm(
        tmp_path,
        [
            {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "octopus-portal"}},
            {
                "apiVersion": "apiextensions.k8s.io/v1beta1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "c"},
            },
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ok"}},
        ],
        monkeypatch,
    )
    raw = with_(octopus(), "octopus.repo.localPath", str(chart))
    with pytest.raises(pulumi.RunError) as err:
        run_program(raw)
    message = str(err.value)
    assert "Kubernetes 1.30" in message
    assert "Ingress octopus-portal: extensions/v1beta1 was removed in Kubernetes 1.22" in message
    assert "CustomResourceDefinition c: apiextensions.k8s.io/v1beta1" in message
    assert "Deployment ok" not in message
    assert "--kube-version v1.30.0" in args.read_text()


def test_local_chart_without_the_claims_its_subcharts_use_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_helm(
        tmp_path,
        [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "octopus-minio-pvc"}}],
        monkeypatch,
    )
    raw = with_(octopus(), "octopus.repo.localPath", str(local_chart(tmp_path)))
    with pytest.raises(pulumi.RunError, match="renders no PersistentVolumeClaim octopus-mysql-pvc"):
        run_program(raw)


def test_local_chart_with_current_apis_installs_from_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    claims = [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": f"octopus-{svc}-pvc"}}
        for svc in ("minio", "mysql", "redis")
    ]
    fake_helm(
        tmp_path,
        [{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x"}}, *claims],
        monkeypatch,
    )
    chart = local_chart(tmp_path)
    rec = run_program(with_(octopus(), "octopus.repo.localPath", str(chart)))
    release = rec.get("octopus-release", RELEASE)
    assert release.inputs["chart"] == str(chart)
    assert "repositoryOpts" not in release.inputs


def test_local_chart_of_another_version_is_refused(tmp_path: Path) -> None:
    raw = with_(octopus(), "octopus.repo.localPath", str(local_chart(tmp_path, "0.2.0")))
    with pytest.raises(pulumi.RunError, match=r"is chart version '0\.2\.0', but octopus\.repo\.version pins '0\.1\.0'"):
        run_program(raw)


def test_without_a_local_chart_or_helm_the_check_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = run_program(octopus())
    assert any("comes from the repository: its Kubernetes API versions are not checked" in w for w in rec.warnings)
    monkeypatch.setenv("PATH", str(tmp_path))
    rec = run_program(with_(octopus(), "octopus.repo.localPath", str(local_chart(tmp_path))))
    assert any("no helm binary on PATH" in w for w in rec.warnings)
    assert rec.get("octopus-release", RELEASE).protect
