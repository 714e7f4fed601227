"""GPU nodes end to end under mocks (issue 20): the node layer before K3s, the labels and
RuntimeClass, what advertises the GPUs (device plugin or GPU operator), time slicing on it,
and the one resource name every consumer uses."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from stacks.mockrun import Recording
from tests.conftest import cluster_only, platform, run_program, with_

CMD = "command:remote:Command"
DS = "kubernetes:apps/v1:DaemonSet"
RELEASE = "kubernetes:helm.sh/v3:Release"


def gpu_cluster(**gpu: Any) -> dict[str, Any]:
    raw = cluster_only()
    raw["cluster"]["agents"][1].update(
        {"gpu": True, "gpuModel": "Tesla-V100-SXM2-16GB", "taints": ["nvidia.com/gpu=true:NoSchedule"]}
    )
    raw["cluster"]["gpu"] = gpu
    return raw


def args_of(rec: Recording, name: str) -> dict[str, str]:
    from stacks.plan import split_command

    return split_command(rec.get(name, CMD).inputs["create"])[2]


def test_gpu_nodes_get_the_driver_and_toolkit_before_k3s() -> None:
    rec = run_program(gpu_cluster())
    step = rec.get("k3s-a1-gpu", CMD)
    assert args_of(rec, "k3s-a1-gpu") == {
        "node": "a1",
        "driver": "install",
        "branch": "535",
        "mode": "online",
        "role": "agent",
    }
    assert f"{CMD}::k3s-a1-gpu" in rec.get("k3s-a1-install", CMD).dependencies
    assert step.inputs["triggers"] == ["10.0.1.11"]
    assert not [d for d in rec.by_type(CMD) if d.name in ("k3s-a0-gpu", "k3s-s0-gpu")]


def test_airgap_gpu_packages_are_uploaded_and_required() -> None:
    raw = gpu_cluster(airgap={"packages": ["gpu/nvidia-driver-535.deb", "gpu/nvidia-container-toolkit.deb"]})
    raw["cluster"]["k3s"].update(
        install="airgap", airgap={"binary": "airgap/k3s", "images": "airgap/i.tar.zst", "installScript": "airgap/i.sh"}
    )
    import contextvars

    from config import files
    from stacks import mockrun
    from tests.conftest import ROOT

    rec = mockrun.run(raw, "t", ROOT, review=True)
    uploads = sorted(d.inputs["remotePath"] for d in rec.by_type("command:remote:CopyToRemote") if "-gpu-" in d.name)
    assert uploads == [
        "/var/tmp/ai-platform/gpu-packages/nvidia-container-toolkit.deb",
        "/var/tmp/ai-platform/gpu-packages/nvidia-driver-535.deb",
    ]
    assert args_of(rec, "k3s-a1-gpu")["packages"] == "/var/tmp/ai-platform/gpu-packages"
    del raw["cluster"]["gpu"]["airgap"]
    from config.load import ConfigError, validate

    with pytest.raises(ConfigError, match=r"cluster\.gpu\.airgap: an airgap stack that installs the GPU driver"):
        contextvars.copy_context().run(lambda: (files.REVIEW.set(files.Review()), validate(raw, ROOT))[1])


def test_gpu_nodes_are_labelled_and_the_runtime_class_declared() -> None:
    rec = run_program(gpu_cluster())
    labels = rec.get("k3s-a1-labels", "kubernetes:core/v1:NodePatch").inputs["metadata"]["labels"]
    assert labels == {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "Tesla-V100-SXM2-16GB"}
    # K3s deploys the `nvidia` RuntimeClass itself (its packaged `runtimes`): not declared twice
    assert not rec.by_type("kubernetes:node.k8s.io/v1:RuntimeClass")
    own = run_program(with_(gpu_cluster(), "cluster.k3s.disable", ["traefik", "runtimes"]))
    assert own.get("k3s-nvidia-runtimeclass").inputs["handler"] == "nvidia"
    nodes = {n["name"]: n for n in rec.outputs["nodes"]}
    assert nodes["a1"]["gpu"] is True and nodes["a1"]["gpuResource"] == "nvidia.com/gpu"
    assert nodes["a0"]["gpuResource"] is None


def test_the_device_plugin_runs_on_exactly_the_gpu_nodes() -> None:
    rec = run_program(gpu_cluster())
    ds = rec.get("gpu-device-plugin", DS)
    assert ds.inputs["metadata"] == {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system"}
    pod = ds.inputs["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["containers"][0]["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"
    assert pod["runtimeClassName"] == "nvidia"  # K3s' own RuntimeClass
    assert not rec.by_type(RELEASE)


def hydra_slicing(**gpu: Any) -> dict[str, Any]:
    raw = gpu_cluster(**gpu)
    raw["openhydra"] = {"enabled": True, "nodes": ["a1"], "gpuTimeSlicing": {"enabled": True, "replicas": 8}}
    return raw


def test_time_slicing_configures_the_device_plugin() -> None:
    rec = run_program(hydra_slicing())
    cm = rec.get("gpu-time-slicing", "kubernetes:core/v1:ConfigMap")
    assert cm.inputs["metadata"] == {"name": "nvidia-device-plugin-config", "namespace": "kube-system"}
    doc = yaml.safe_load(cm.inputs["data"]["config.yaml"])
    assert doc["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 8}]
    container = rec.get("gpu-device-plugin", DS).inputs["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "CONFIG_FILE", "value": "/etc/nvidia-device-plugin/config.yaml"} in container["env"]
    # nothing targets a GPU operator that is not there
    assert not [
        d
        for d in rec.declared
        if "ClusterPolicy" in d.type or d.inputs.get("metadata", {}).get("namespace") == "gpu-operator"
    ]


def test_the_gpu_operator_gets_the_slicing_config_and_leaves_driver_and_toolkit_to_the_nodes() -> None:
    rec = run_program(hydra_slicing(plugin="gpu-operator"))
    release = rec.get("gpu-operator", RELEASE)
    values = release.inputs["values"]
    assert release.inputs["chart"] == "gpu-operator" and release.inputs["version"] == "v24.9.2"
    assert values["driver"] == {"enabled": False} and values["toolkit"] == {"enabled": False}
    assert values["devicePlugin"] == {"config": {"name": "time-slicing-config-all", "default": "any"}}
    cm = rec.get("gpu-time-slicing", "kubernetes:core/v1:ConfigMap")
    assert cm.inputs["metadata"] == {"name": "time-slicing-config-all", "namespace": "gpu-operator"}
    assert "kubernetes:core/v1:Namespace::gpu-operator-namespace" in cm.dependencies
    assert not rec.by_type(DS)


def test_time_slicing_without_a_plugin_is_refused_naming_both_keys() -> None:
    with pytest.raises(Exception, match=r"openhydra\.gpuTimeSlicing\.enabled: .*cluster\.gpu\.plugin is none"):
        run_program(hydra_slicing(plugin="none"))


def test_one_resource_name_for_csghub_open_hydra_and_the_outputs() -> None:
    raw = platform(csghub={"domain": "ai.example.com", "gpu": True})
    raw["cluster"]["agents"][1]["gpu"] = True
    raw["cluster"]["gpu"] = {"resource": "nvidia.com/gpu"}
    raw["openhydra"] = {"enabled": True}
    rec = run_program(raw)
    runner = rec.get("csghub-release", RELEASE).inputs["values"]["runner"]
    assert runner["gpuModelLabel"] == {"typeLabel": "nvidia.com/gpu.product", "capacityLabel": "nvidia.com/gpu"}
    readable = rec.get("openhydra-server-config-readable").inputs["data"]["config.yaml"]
    assert yaml.safe_load(readable)["defaultGpuDriver"] == "nvidia.com/gpu"


def test_no_gpu_node_no_gpu_layer() -> None:
    rec = run_program(cluster_only())
    assert not [d for d in rec.declared if d.name.startswith("gpu")] and not rec.by_type(DS)
    assert not [d for d in rec.by_type(CMD) if d.name.endswith("-gpu")]


def test_preinstalled_driver_mode_reaches_the_node_script() -> None:
    rec = run_program(with_(gpu_cluster(driver="preinstalled"), "cluster.gpu.driverBranch", "525"))
    assert args_of(rec, "k3s-a1-gpu")["driver"] == "preinstalled"
    assert args_of(rec, "k3s-a1-gpu")["branch"] == "525"
