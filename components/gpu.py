"""GPU cluster layer: what advertises the GPUs of the GPU nodes, and time slicing on it.

The node layer (components/k3s.py, `gpu-node.sh`) installs or checks the NVIDIA driver and
container toolkit before K3s, which then registers the containerd runtime `nvidia` and (its
packaged `runtimes` manifest) the `nvidia` RuntimeClass — the K3s component declares it only
when `runtimes` is disabled — and the K3s component labels the GPU nodes
`nvidia.com/gpu.present=true` (and `nvidia.com/gpu.product` from `gpuModel`). This layer
then runs, per `cluster.gpu.plugin`:

    device-plugin   NVIDIA's k8s-device-plugin as a DaemonSet in kube-system, on exactly the
                    labelled nodes (their taints tolerated), with `runtimeClassName: nvidia`;
                    with time slicing, its config as a ConfigMap it reads (`CONFIG_FILE`)
    gpu-operator    the GPU operator chart (pinned) in `gpu-operator`, with its driver and
                    toolkit off (the node layer has them); with time slicing, the ConfigMap
                    in its namespace and the chart's `devicePlugin.config` pointing at it
                    (the `ClusterPolicy` the chart renders carries it: nothing to patch)

Either way the GPUs are advertised as `cluster.gpu.resource` (`nvidia.com/gpu`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import helm
from config.cluster import Gpu

GPU_LABEL = "nvidia.com/gpu.present"
PRODUCT_LABEL = "nvidia.com/gpu.product"
PLUGIN_NAMESPACE = "kube-system"
PLUGIN_NAME = "nvidia-device-plugin-daemonset"
PLUGIN_CONFIG = "nvidia-device-plugin-config"
OPERATOR_NAMESPACE = "gpu-operator"
TIME_SLICING_CONFIGMAP = "time-slicing-config-all"  # seed 004's name, key `any`
CONFIG_DIR = "/etc/nvidia-device-plugin"


def time_slicing_config(resource: str, replicas: int) -> str:
    """The NVIDIA device plugin's time-slicing config: every GPU shared `replicas` ways."""
    doc = {
        "version": "v1",
        "flags": {"migStrategy": "none"},
        "sharing": {"timeSlicing": {"resources": [{"name": resource, "replicas": replicas}]}},
    }
    return yaml.safe_dump(doc, sort_keys=True)


@dataclass(frozen=True)
class GpuArgs:
    config: Gpu
    provider: k8s.Provider
    # Tolerations of the GPU nodes' taints (the plugin must run where the GPUs are).
    tolerations: list[dict[str, str]] = field(default_factory=list)
    # open-hydra's time slicing: GPUs shared this many ways (None: off).
    time_slicing: int | None = None
    # The nodes' RuntimeClass `nvidia` (declared by the K3s component): the plugin waits for it.
    runtime_class: pulumi.Resource | None = None


class GpuLayer(pulumi.ComponentResource):
    resource: str  # what GPUs are requested as

    def __init__(self, name: str, args: GpuArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:Gpu", name, None, opts)
        self._name = name
        self._args = args
        self.resource = args.config.resource
        if args.config.plugin == "device-plugin":
            self._device_plugin()
        elif args.config.plugin == "gpu-operator":
            self._operator()
        self.register_outputs({"resource": self.resource, "plugin": args.config.plugin})

    def _child(self, **extra: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, **extra)

    def _device_plugin(self) -> None:
        args = self._args
        after: list[pulumi.Resource] = [args.runtime_class] if args.runtime_class is not None else []
        env = [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}]
        mounts: list[dict[str, Any]] = [{"name": "device-plugin", "mountPath": "/var/lib/kubelet/device-plugins"}]
        volumes: list[dict[str, Any]] = [
            {"name": "device-plugin", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}
        ]
        annotations: dict[str, pulumi.Input[str]] = {}
        if args.time_slicing is not None:
            config = k8s.core.v1.ConfigMap(
                f"{self._name}-time-slicing",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=PLUGIN_CONFIG, namespace=PLUGIN_NAMESPACE),
                data={"config.yaml": time_slicing_config(args.config.resource, args.time_slicing)},
                opts=self._child(),
            )
            after.append(config)
            env.append({"name": "CONFIG_FILE", "value": f"{CONFIG_DIR}/config.yaml"})
            mounts.append({"name": "config", "mountPath": CONFIG_DIR, "readOnly": True})
            volumes.append({"name": "config", "configMap": {"name": PLUGIN_CONFIG}})
            # The plugin reads its config at start: a new config rolls the pods.
            annotations["ai-platform.io/config-version"] = config.metadata.apply(
                lambda m: (m.resource_version if m else None) or ""
            )
        labels = {"name": "nvidia-device-plugin-ds"}
        tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        tolerations += [t for t in args.tolerations if t not in tolerations]
        k8s.apps.v1.DaemonSet(
            f"{self._name}-device-plugin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PLUGIN_NAME, namespace=PLUGIN_NAMESPACE),
            spec=cast(
                Any,
                {
                    "selector": {"matchLabels": labels},
                    "updateStrategy": {"type": "RollingUpdate"},
                    "template": {
                        "metadata": {"labels": labels, "annotations": annotations},
                        "spec": {
                            "runtimeClassName": "nvidia",
                            "nodeSelector": {GPU_LABEL: "true"},
                            "tolerations": tolerations,
                            "priorityClassName": "system-node-critical",
                            "containers": [
                                {
                                    "name": "nvidia-device-plugin-ctr",
                                    "image": args.config.device_plugin.image,
                                    "env": env,
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                    "volumeMounts": mounts,
                                }
                            ],
                            "volumes": volumes,
                        },
                    },
                },
            ),
            # No pod becomes ready on a cluster without GPUs (or in a review): do not wait for it.
            opts=self._child(depends_on=after),
        )

    def _operator(self) -> None:
        args = self._args
        namespace = k8s.core.v1.Namespace(
            f"{self._name}-operator-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=OPERATOR_NAMESPACE),
            opts=self._child(),
        )
        values: dict[str, Any] = {
            # The node layer installed (or checked) the driver and the toolkit.
            "driver": {"enabled": False},
            "toolkit": {"enabled": False},
            "daemonsets": {
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                    *args.tolerations,
                ]
            },
        }
        after: list[pulumi.Resource] = [namespace]
        if args.time_slicing is not None:
            after.append(
                k8s.core.v1.ConfigMap(
                    f"{self._name}-time-slicing",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=TIME_SLICING_CONFIGMAP, namespace=OPERATOR_NAMESPACE),
                    data={"any": time_slicing_config(args.config.resource, args.time_slicing)},
                    opts=self._child(depends_on=[namespace]),
                )
            )
            values["devicePlugin"] = {"config": {"name": TIME_SLICING_CONFIGMAP, "default": "any"}}
        helm.release(
            f"{self._name}-operator",
            args.config.operator.chart,
            name="gpu-operator",
            namespace=OPERATOR_NAMESPACE,
            values=values,
            timeout=900,
            opts=self._child(depends_on=after),
        )
