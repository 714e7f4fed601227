"""The platform layers on the CSGHub 1.17 chart, and the data that flows between them."""

from __future__ import annotations

import base64
import json
from typing import Any

from components.csghub import COREDNS_HASH_ANNOTATION
from components.knative import REVISION_ANNOTATION, kourier_internal
from stacks.mockrun import SECRET, Recording
from stacks.rules import check
from tests.conftest import cluster_only, platform, run_program, standalone_dataflow, with_

RELEASE = "kubernetes:helm.sh/v3:Release"
CMD = "command:remote:Command"
PROVIDER = "pulumi:providers:kubernetes::k3s-provider"

EXT_PG = {"host": "pg.example.com", "user": "df", "password": "pg-pass-123"}
EXT_REDIS = {"host": "redis.example.com", "password": "redis-pass-123"}
EXT_MONGO = {"host": "mongo.example.com", "user": "df", "password": "mongo-pass-123"}


def values(rec: Recording, name: str = "csghub-release") -> dict[str, Any]:
    return rec.get(name, RELEASE).inputs["values"]


def test_knative_settings_reach_the_csghub_values() -> None:
    rec = run_program(platform(knative={"domain": "apps.internal", "scaleToZeroGracePeriod": "30m"}))
    runner = values(rec)["runner"]
    assert runner["knative"]["serving"] == {
        "domain": "apps.internal",
        "autoscaler": {"enableScaleToZero": "false", "scaleToZeroGracePeriod": "30m"},
    }
    # left to the chart (empty renders "auto"): a kourier-system address would point at nothing
    assert "applicationEndpoint" not in runner
    internal = "http://kourier-internal.knative-serving.svc.cluster.local"
    assert kourier_internal(True) == internal
    assert rec.outputs["knative"] == {"domain": "apps.internal", "endpoint": internal}


def test_kourier_service_type_is_pinned_after_every_release_revision() -> None:
    rec = run_program(platform(knative={"kourier": {"serviceType": "NodePort", "httpNodePort": 31080}}))
    ks = rec.get("knative-serving-kourier-service-type")
    assert ks.type == "kubernetes:operator.knative.dev/v1beta1:KnativeServingPatch"
    assert (
        ks.inputs["metadata"]["name"] == "knative-serving" and ks.inputs["metadata"]["namespace"] == "knative-serving"
    )
    assert ks.inputs["spec"]["ingress"]["kourier"]["service-type"] == "NodePort"
    assert REVISION_ANNOTATION in ks.inputs["metadata"]["annotations"]
    assert f"{RELEASE}::csghub-release" in ks.dependencies
    svc = rec.get("knative-kourier-nodeport", "kubernetes:core/v1:ServicePatch")
    # the Knative Operator deploys Kourier beside its KnativeServing, in knative-serving
    assert svc.inputs["metadata"]["namespace"] == "knative-serving" and svc.inputs["metadata"]["name"] == "kourier"
    assert svc.inputs["spec"]["ports"][0]["nodePort"] == 31080
    assert ks.provider == PROVIDER and svc.provider == PROVIDER


def test_nodeport_gateway_values_and_urls() -> None:
    rec = run_program(platform())
    gw = values(rec)["global"]["gateway"]
    assert gw["service"] == {"type": "NodePort", "nodePorts": {"http": 30080, "https": 30443, "gitssh": 30022}}
    assert gw["external"] == {"domain": "ai.example.com"} and gw["tls"] == {"enabled": False}
    # chart 1.17: the portal and the registry at the domain itself, others at <service>.<base>
    assert rec.outputs["urls"]["portal"] == "http://ai.example.com:30080"
    assert rec.outputs["urls"]["registry"] == "http://ai.example.com:30080"
    assert rec.outputs["urls"]["casdoor"] == "http://casdoor.example.com:30080"
    assert rec.outputs["urls"]["minio"] == "http://minio.example.com:30080"
    assert rec.outputs["gateway"] == {"address": "10.0.0.10", "ports": {"gitssh": 30022, "http": 30080, "https": 30443}}


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_loadbalancer_with_tls() -> None:
    raw = platform(
        gateway={
            "serviceType": "LoadBalancer",
            "address": "10.9.0.1",
            "tls": {"certificate": PEM, "key": "tls-key-xyz"},
        }
    )
    raw["cluster"]["ssh"]["port"] = 2222  # ServiceLB gives port 22 of every node to git over SSH
    rec = run_program(raw)
    gw = values(rec)["global"]["gateway"]
    assert gw["service"] == {"type": "LoadBalancer"}
    assert gw["tls"] == {"enabled": True, "secretName": "csghub-tls"}
    tls = rec.get("gateway-tls", "kubernetes:core/v1:Secret")
    assert tls.inputs["type"] == "kubernetes.io/tls"
    assert tls.inputs["stringData"] == SECRET  # the SDK keeps a Secret's whole stringData secret
    assert rec.outputs["urls"]["portal"] == "https://ai.example.com"
    assert "tls-key-xyz" not in json.dumps([d.as_json() for d in rec.declared])


def test_gateway_address_reaches_coredns_and_restarts_only_on_change() -> None:
    rec = run_program(platform(gateway={"address": "10.7.7.7"}))
    cm = rec.get("csghub-coredns-custom", "kubernetes:core/v1:ConfigMap")
    assert cm.inputs["metadata"] == {"name": "coredns-custom", "namespace": "kube-system"}
    # one server block for the zone every CSGHub name lives in (the domain minus its first label)
    assert list(cm.inputs["data"]) == ["example.com.server"]
    block = cm.inputs["data"]["example.com.server"]
    assert "10.7.7.7 ai.example.com casdoor.example.com minio.example.com\n" in block
    assert "template IN A ai.example.com {" in block  # spaces: *.ai.example.com
    patch = rec.get("csghub-coredns-restart", "kubernetes:apps/v1:DeploymentPatch")
    assert patch.inputs["metadata"]["name"] == "coredns" and patch.inputs["metadata"]["namespace"] == "kube-system"
    digest = patch.inputs["spec"]["template"]["metadata"]["annotations"][COREDNS_HASH_ANNOTATION]
    other = run_program(platform(gateway={"address": "10.7.7.8"}))
    digest2 = other.get("csghub-coredns-restart").inputs["spec"]["template"]["metadata"]["annotations"][
        COREDNS_HASH_ANNOTATION
    ]
    same = run_program(platform(gateway={"address": "10.7.7.7"}))
    assert digest != digest2
    assert (
        same.get("csghub-coredns-restart").inputs["spec"]["template"]["metadata"]["annotations"][
            COREDNS_HASH_ANNOTATION
        ]
        == digest
    )


def test_registry_secret_reaches_every_nodes_registries_rollout() -> None:
    rec = run_program(platform())
    read = rec.get("csghub-registry-secret")
    assert read.read and read.type == "kubernetes:core/v1:Secret"
    for node in ("s0", "a0", "a1"):
        reg = rec.get(f"k3s-{node}-registries", CMD)
        assert "kubernetes:core/v1:Secret::csghub-registry-secret" in reg.dependencies
        assert reg.inputs["stdin"] == SECRET


def test_registry_secret_becomes_mirror_and_auth_for_the_nodes() -> None:
    from components.csghub import endpoints, node_registry_entries
    from components.k3s import registries_yaml
    from config.cluster import Cluster
    from config.csghub import Csghub
    from config.gateway import Gateway

    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    ep = endpoints(Csghub(domain="ai.example.com"), Gateway())
    entries = node_registry_entries({"REGISTRY_USERNAME": b64("registry"), "REGISTRY_PASSWORD": b64("chart-made")}, ep)
    doc = __import__("yaml").safe_load(registries_yaml(Cluster.model_validate(cluster_only()["cluster"]), entries))
    # keyed by host:port, exactly as the images name the registry (common.registry.config)
    assert doc["mirrors"]["ai.example.com:30080"] == {"endpoint": ["http://ai.example.com:30080"]}
    assert doc["configs"]["ai.example.com:30080"] == {"auth": {"username": "registry", "password": "chart-made"}}


def test_admin_password_generated_secret_never_the_seed_default() -> None:
    rec = run_program(platform())
    admin = values(rec)["casdoor"]["admin"]
    assert admin == {"name": "admin", "password": SECRET}
    assert rec.outputs["credentials"]["csghub"] == {"username": "admin", "password": SECRET}
    pw = rec.get("csghub-admin-password", "random:index/randomPassword:RandomPassword")
    assert pw.inputs["length"] >= 16 and "result" in pw.additional_secret_outputs
    assert check(rec) == []


def test_given_admin_password_stays_secret() -> None:
    rec = run_program(
        platform(csghub={"domain": "ai.example.com", "admin": {"username": "ops", "password": "Given-Pass-1"}})
    )
    assert "Given-Pass-1" not in json.dumps([d.as_json() for d in rec.declared])
    assert values(rec)["casdoor"]["admin"] == {"name": "ops", "password": SECRET}


def test_csghub_release_pinned_protected_and_local_chart_for_airgap(tmp_path: Any) -> None:
    rec = run_program(platform())
    rel = rec.get("csghub-release", RELEASE)
    assert rel.inputs["chart"] == "csghub" and rel.inputs["version"] == "1.17.0"
    assert rel.inputs["repositoryOpts"] == {"repo": "https://charts.opencsg.com/csghub"}
    assert rel.inputs["namespace"] == "csghub" and rel.protect and rel.provider == PROVIDER
    (tmp_path / "charts" / "csghub").mkdir(parents=True)
    (tmp_path / "charts" / "csghub" / "Chart.yaml").write_text("name: csghub\nversion: 1.17.0\n")
    local = run_program(
        platform(
            csghub={
                "domain": "ai.example.com",
                "chart": {
                    "repository": "https://charts.opencsg.com/csghub",
                    "name": "csghub",
                    "version": "1.17.0",
                    "localPath": "charts/csghub",
                },
            }
        ),
        project_dir=tmp_path,
    )
    rel = local.get("csghub-release", RELEASE)
    assert rel.inputs["chart"] == "charts/csghub" and "repositoryOpts" not in rel.inputs


def test_persistence_mirror_and_external_services() -> None:
    raw = platform(
        csghub={
            "domain": "ai.example.com",
            "image": {"registry": "opencsg-registry.cn-beijing.cr.aliyuncs.com"},
            "persistence": {"storageClass": "fast", "minio": "500Gi"},
            "services": {"postgresql": {"host": "pg", "user": "csghub", "password": "csg-pg-pass"}},
        }
    )
    v = values(run_program(raw))
    assert v["global"]["image"] == {"registry": "opencsg-registry.cn-beijing.cr.aliyuncs.com"}
    assert v["global"]["persistence"] == {"storageClass": "fast"}
    assert v["minio"]["persistence"]["size"] == "500Gi" and v["postgresql"]["persistence"]["size"] == "50Gi"
    assert v["global"]["postgresql"]["enabled"] is False
    assert v["global"]["postgresql"]["external"]["password"] == SECRET
    assert v["global"]["redis"] == {"enabled": True}


def test_nothing_the_1_17_chart_dropped() -> None:
    rec = run_program(platform())
    names = [d.name for d in rec.declared]
    assert not any("kube-configs" in n or "registry-certs" in n for n in names)
    for d in rec.declared:
        assert "kube-configs" not in json.dumps(d.inputs)


def test_dataflow_bundled_values_flow_into_csghub() -> None:
    raw = platform(
        dataflow={
            "enabled": True,
            "persistence": {"storageClass": "nfs-rwx"},
            "databases": {
                "postgresql": {"mode": "external", "external": EXT_PG},
                "redis": {"mode": "external", "external": EXT_REDIS},
                "mongo": {"mode": "external", "external": EXT_MONGO},
            },
        }
    )
    rec = run_program(raw)
    v = values(rec)
    assert rec.by_type(RELEASE) == [rec.get("csghub-release")], "bundled: no second release"
    df = v["dataflow"]
    assert df["enabled"] is True and v["global"]["dataflow"] == {"enabled": True}
    assert df["dataflow"]["postgresql"]["database"] == "csghub_dataflow"
    assert df["labelStudio"]["postgresql"]["database"] == "csghub_label_studio"
    assert df["dataflow"]["postgresql"]["password"] == SECRET
    assert df["dataflow"]["redis"]["password"] == SECRET and df["dataflow"]["mongo"]["password"] == SECRET
    assert v["global"]["mongo"] == {
        "enabled": False,
        "external": {"host": "mongo.example.com", "port": 27017, "user": "df", "password": SECRET},
    }
    assert df["dataflow"]["persistence"] == {
        "accessModes": ["ReadWriteMany"],
        "size": "100Gi",
        "storageClass": "nfs-rwx",
    }
    blob = json.dumps([d.as_json() for d in rec.declared]) + json.dumps(rec.outputs)
    for pw in ("pg-pass-123", "redis-pass-123", "mongo-pass-123"):
        assert pw not in blob
    assert check(rec) == []


def test_dataflow_off_turns_the_bundled_subchart_off() -> None:
    v = values(run_program(platform()))
    assert v["dataflow"] == {"enabled": False} and v["global"]["dataflow"] == {"enabled": False}


def test_standalone_dataflow_release_when_csghub_is_off() -> None:
    raw = standalone_dataflow(
        persistence={"storageClass": "nfs-rwx"},
        databases={"postgresql": {"mode": "external", "external": EXT_PG}},
    )
    rec = run_program(raw)
    rel = rec.get("dataflow-dataflow", RELEASE)
    assert rel.protect and rel.inputs["chart"] == "dataflow" and rel.inputs["version"] == "1.17.0"
    v = rel.inputs["values"]
    assert v["global"]["chartContext"] == {"isBuiltIn": False}
    assert v["externalUrl"] == "https://hub.example.com"
    assert v["global"]["postgresql"]["enabled"] is False and v["global"]["postgresql"]["external"]["password"] == SECRET
    assert v["global"]["redis"] == {"enabled": True}
    assert rec.outputs["urls"]["dataflow"] == "http://df.example.com"
    assert rec.get("dataflow-namespace").protect


def test_standalone_knative_when_csghub_is_off() -> None:
    raw = cluster_only()
    raw["knative"] = {"kourier": {"serviceType": "NodePort", "httpNodePort": 31080}}
    rec = run_program(raw)
    crds = rec.get("knative-serving-crds", "kubernetes:yaml/v2:ConfigFile")
    core = rec.get("knative-serving-core", "kubernetes:yaml/v2:ConfigFile")
    kourier = rec.get("knative-kourier", "kubernetes:yaml/v2:ConfigFile")
    assert crds.inputs["file"].endswith("/knative-v1.21.0/serving-crds.yaml")
    assert "kubernetes:yaml/v2:ConfigFile::knative-serving-crds" in core.dependencies
    assert "kubernetes:yaml/v2:ConfigFile::knative-serving-core" in kourier.dependencies
    net = rec.get("knative-config-network", "kubernetes:core/v1:ConfigMapPatch")
    assert net.inputs["data"] == {"ingress-class": "kourier.ingress.networking.knative.dev"}
    assert net.inputs["metadata"]["namespace"] == "knative-serving"
    assert rec.get("knative-config-autoscaler").inputs["data"]["enable-scale-to-zero"] == "false"
    assert rec.get("knative-config-domain").inputs["data"] == {"app.internal": ""}
    assert rec.get("knative-kourier-nodeport").inputs["spec"]["type"] == "NodePort"
    assert rec.outputs["knative"]["endpoint"] == "http://10.0.0.10:31080"
    assert not rec.by_type(RELEASE)


def test_standalone_knative_airgap_manifests_are_local_files(tmp_path: Any) -> None:
    raw = cluster_only()
    crds = tmp_path / "abs" / "serving-crds.yaml"
    for f in (crds, tmp_path / "knative" / "core.yaml"):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("# manifest\n")
    raw["knative"] = {
        "manifests": {
            "crds": {"url": "https://x.example/knative-v1.21.0/serving-crds.yaml", "localPath": str(crds)},
            "core": {"url": "https://x.example/knative-v1.21.0/serving-core.yaml", "localPath": "knative/core.yaml"},
        }
    }
    rec = run_program(raw, project_dir=tmp_path)
    assert rec.get("knative-serving-crds").inputs["file"] == str(crds)
    assert rec.get("knative-serving-core").inputs["file"].endswith("/knative/core.yaml")


def test_storage_modes() -> None:
    rec = run_program(platform())
    patch = rec.get("storage-local-path-default", "kubernetes:storage.k8s.io/v1:StorageClassPatch")
    assert patch.inputs["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert values(rec)["global"]["persistence"] == {"storageClass": "local-path"}
    rec = run_program(platform(storage={"mode": "local-static", "nfs": {"server": "10.0.0.50", "path": "/export"}}))
    disks = [d for d in rec.by_type(CMD) if d.name.endswith("-fake-disks")]
    assert sorted(d.name for d in disks) == ["storage-a0-fake-disks", "storage-a1-fake-disks", "storage-s0-fake-disks"]
    assert all(d.inputs.get("delete") for d in disks)
    assert f"{CMD}::k3s-a0-ready" in rec.get("storage-a0-fake-disks").dependencies
    ls = rec.get("storage-local-static", RELEASE)
    assert (
        ls.inputs["version"] == "2.0.0" and ls.inputs["values"]["classes"][0]["storageClass"]["isDefaultClass"] is True
    )
    nfs = rec.get("storage-nfs", RELEASE)
    assert nfs.inputs["values"]["storageClass"]["accessModes"] == "ReadWriteMany"
    assert nfs.inputs["values"]["nfs"] == {"server": "10.0.0.50", "path": "/export"}
    assert rec.outputs["storage"] == {"defaultClass": "local-disks", "rwxClass": "nfs-rwx"}


def test_each_layer_can_be_switched_off() -> None:
    base = platform()
    for off in ("storage",):
        rec = run_program(with_(base, f"{off}.enabled", False))
        assert not [d for d in rec.declared if d.parent == "ai-platform:index:Storage::storage"]
        assert rec.get("csghub-release")
    rec = run_program(cluster_only())
    assert not rec.by_type(RELEASE) and "urls" not in rec.outputs


def test_every_kubernetes_resource_uses_the_cluster_provider() -> None:
    rec = run_program(platform(dataflow={"enabled": True, "persistence": {"storageClass": "x"}}))
    for d in rec.declared:
        if d.custom and d.type.startswith("kubernetes:"):
            assert d.provider == PROVIDER, d.key
