"""The GPU chain against the real control plane (issue 20): the program's GPU objects (the
device plugin DaemonSet and its time-slicing ConfigMap, as `make plan` of a stack with a
tainted GPU node declares them) applied to the real kube-apiserver, placed by the real
DaemonSet controller and scheduler onto exactly the GPU node, and a pod requesting
`nvidia.com/gpu` scheduled there once the node advertises one.

Stand-ins, said plainly: the nodes are kwok's (no kubelet, no device plugin registration,
no GPU), so the test itself gives the GPU node its `nvidia.com/gpu` capacity, as the device
plugin would through a real kubelet; the `nvidia` RuntimeClass is K3s' packaged one
(tests/standin/manifests/runtimes.yaml, what a fresh K3s creates)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from stacks import mockrun
from tests.conftest import ROOT, cluster_only
from tests.engine.controlplane import ControlPlane, control_plane
from tests.plan.k8s_schema import manifest_of

pytestmark = pytest.mark.engine
GPU_NODE = "engine-gpu-0"
TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


def program_gpu_objects() -> list[dict[str, Any]]:
    """The GPU layer's Kubernetes objects as the program declares them (secrets unwrapped)."""
    raw = cluster_only(servers=1, agents=1)
    raw["cluster"]["agents"][0].update(
        {"name": GPU_NODE, "gpu": True, "taints": [f"{TAINT['key']}={TAINT['value']}:{TAINT['effect']}"]}
    )
    raw["openhydra"] = {"enabled": True, "nodes": [GPU_NODE], "gpuTimeSlicing": {"enabled": True, "replicas": 4}}
    rec = mockrun.run(raw, "gpu", ROOT, keep_secrets=True)
    objects = []
    for d in rec.declared:
        if d.parent != "ai-platform:index:Gpu::gpu":
            continue
        found = manifest_of(d.type, d.raw_inputs)
        assert found is not None and not found[1], d.key
        manifest = found[0]
        for k in ("metadata",):  # what only `pulumi up` knows reads <computed at up>
            manifest[k] = {kk: vv for kk, vv in manifest[k].items() if vv != mockrun.COMPUTED}
        template = (manifest.get("spec") or {}).get("template", {}).get("metadata", {})
        for key, value in list((template.get("annotations") or {}).items()):
            if value in (mockrun.COMPUTED, ""):
                template["annotations"][key] = "1"
        objects.append(manifest)
    assert {o["kind"] for o in objects} == {"DaemonSet", "ConfigMap"}, objects
    return objects


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane of its own (the engine stack's keeps its inventory), with a plain node
    and a tainted GPU node, and K3s' packaged RuntimeClasses."""
    with control_plane(tmp_path_factory.mktemp("gpu-control-plane")) as plane:
        plane.simulated_node("engine-plain-0")
        plane.simulated_node(GPU_NODE, {"nvidia.com/gpu.present": "true"})
        plane.kubectl("taint", "node", GPU_NODE, f"{TAINT['key']}={TAINT['value']}:{TAINT['effect']}", "--overwrite")
        plane.apply((ROOT / "tests" / "standin" / "manifests" / "runtimes.yaml").read_text())
        yield plane


def test_the_real_api_server_takes_the_gpu_objects_and_the_plugin_lands_on_the_gpu_node_only(cp: ControlPlane) -> None:
    for obj in program_gpu_objects():
        cp.kubectl("apply", "--server-side", "--field-manager", "ai-platform-test", "-f", "-", stdin=json.dumps(obj))
    cm = cp.get_json("configmap", "-n", "kube-system", "nvidia-device-plugin-config")
    sharing = yaml.safe_load(cm["data"]["config.yaml"])["sharing"]["timeSlicing"]["resources"]
    assert sharing == [{"name": "nvidia.com/gpu", "replicas": 4}]

    def placed() -> list[str]:
        pods = cp.get_json("pods", "-n", "kube-system", "-l", "name=nvidia-device-plugin-ds")["items"]
        return sorted(p["spec"].get("nodeName", "") for p in pods if p["status"].get("phase") == "Running")

    cp.wait_for(lambda: placed() == [GPU_NODE], "the device plugin to run on the GPU node", timeout=120)
    ds = cp.get_json("daemonset", "-n", "kube-system", "nvidia-device-plugin-daemonset")
    assert ds["status"]["desiredNumberScheduled"] == 1  # not on the plain node
    pod = cp.get_json("pods", "-n", "kube-system", "-l", "name=nvidia-device-plugin-ds")["items"][0]
    assert pod["spec"]["runtimeClassName"] == "nvidia"


def test_a_pod_asking_for_a_gpu_schedules_once_the_node_advertises_it(cp: ControlPlane) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "wants-a-gpu", "namespace": "default"},
        "spec": {
            "runtimeClassName": "nvidia",
            "tolerations": [{**TAINT, "operator": "Equal"}],
            "containers": [
                {"name": "c", "image": "example.invalid/cuda:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
            ],
        },
    }
    cp.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    try:

        def phase() -> tuple[str, str]:
            p = cp.get_json("pod", "-n", "default", "wants-a-gpu")
            return p["status"].get("phase", ""), p["spec"].get("nodeName", "")

        # nothing advertises nvidia.com/gpu yet: the real scheduler keeps it Pending
        cp.wait_for(
            lambda: any(
                c.get("reason") == "Unschedulable"
                for c in cp.get_json("pod", "-n", "default", "wants-a-gpu")["status"].get("conditions", [])
            ),
            "the scheduler to find no node with a GPU",
            timeout=60,
        )
        assert phase() == ("Pending", "")
        # what the device plugin registers through a real kubelet: one GPU on the GPU node
        gpu = json.dumps({"status": {"capacity": {"nvidia.com/gpu": "1"}, "allocatable": {"nvidia.com/gpu": "1"}}})
        cp.kubectl("patch", "node", GPU_NODE, "--subresource=status", "--type=merge", "-p", gpu)
        cp.wait_for(lambda: phase() == ("Running", GPU_NODE), "the GPU pod to run on the GPU node", timeout=120)
    finally:
        cp.kubectl("delete", "pod", "-n", "default", "wants-a-gpu", "--ignore-not-found", "--wait=false", check=False)
