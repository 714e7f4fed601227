"""Knative Serving: the settings, whoever installs it.

With the CSGHub layer on, the CSGHub chart's runner installs Knative Serving through the
Knative Operator and re-creates its `KnativeServing` resource on every upgrade (a Helm
hook). This component owns the settings and hands them to the release as values
(`runner.knative.serving.*`, keyed by the chart line: components/csghub_lines/); what the chart does not expose
— the Kourier service type and NodePort — it applies after the release with server-side
apply patches whose inputs carry the release's revision, so every upgrade (which
re-creates the hook) re-applies them. See docs/adr/0005-knative-settings.md.

With the CSGHub layer off, it installs Serving CRDs, core and Kourier from pinned
manifests (CRDs first, on their own) and applies seed 000's settings as `*Patch` resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from config.base import ManifestSource
from config.fields import url_host
from config.knative import Knative

KOURIER_CLASS = "kourier.ingress.networking.knative.dev"
KNATIVE_NS = "knative-serving"
# Where Kourier runs: the standalone manifests put it in kourier-system; the Knative
# Operator of the CSGHub runner deploys it beside its KnativeServing, in knative-serving.
KOURIER_NS_STANDALONE = "kourier-system"
KOURIER_NS_OPERATOR = KNATIVE_NS
REVISION_ANNOTATION = "ai-platform.io/applied-for-revision"


def manifest_file(src: ManifestSource, base_dir: Path) -> str:
    if src.local_path:
        p = Path(src.local_path).expanduser()
        return str(p if p.is_absolute() else base_dir / p)
    return src.url


def kourier_namespace(installed_by_csghub: bool) -> str:
    return KOURIER_NS_OPERATOR if installed_by_csghub else KOURIER_NS_STANDALONE


def kourier_internal(installed_by_csghub: bool) -> str:
    """Kourier's in-cluster endpoint, whatever its service type."""
    return f"http://kourier-internal.{kourier_namespace(installed_by_csghub)}.svc.cluster.local"


@dataclass(frozen=True)
class KnativeArgs:
    config: Knative
    provider: k8s.Provider
    base_dir: Path
    # True: the CSGHub runner installs Knative (operator); False: install it here.
    installed_by_csghub: bool
    node_address: pulumi.Input[str]
    # Knative is served through the CSGHub gateway (chart 2.x gateway-api): no Kourier.
    through_gateway: bool = False


class KnativeLayer(pulumi.ComponentResource):
    endpoint: pulumi.Output[str]
    domain: pulumi.Output[str]

    def __init__(self, name: str, args: KnativeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:Knative", name, None, opts)
        self._name = name
        self._args = args
        cfg = args.config
        self._pinned = False
        if args.through_gateway:
            self.endpoint = pulumi.Output.from_input("through the CSGHub gateway (gateway-api)")
        elif cfg.kourier.service_type == "NodePort":
            self.endpoint = pulumi.Output.from_input(args.node_address).apply(
                lambda a: f"http://{url_host(a)}:{cfg.kourier.http_node_port}"
            )
        else:
            self.endpoint = pulumi.Output.from_input(kourier_internal(args.installed_by_csghub))
        self.domain = pulumi.Output.from_input(cfg.domain)
        if not args.installed_by_csghub:
            self._standalone()
        self.register_outputs({"endpoint": self.endpoint, "domain": self.domain})

    def pin_after(self, release_revision: pulumi.Input[Any], depends_on: list[pulumi.Resource]) -> None:
        """Apply what the chart does not expose, again after every upgrade of the release."""
        if self._pinned:
            raise RuntimeError("pin_after() called twice")
        self._pinned = True
        cfg = self._args.config
        opts = pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=depends_on)
        revision = pulumi.Output.from_input(release_revision).apply(str)
        annotations: dict[str, pulumi.Input[str]] = {REVISION_ANNOTATION: revision, "pulumi.com/patchForce": "true"}
        k8s.apiextensions.CustomResourcePatch(
            f"{self._name}-serving-kourier-service-type",
            api_version="operator.knative.dev/v1beta1",
            kind="KnativeServing",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(  # type: ignore[arg-type]
                name="knative-serving", namespace=KNATIVE_NS, annotations=annotations
            ),
            spec={"ingress": {"kourier": {"enabled": True, "service-type": cfg.kourier.service_type}}},
            opts=opts,
        )
        if cfg.kourier.service_type == "NodePort":
            self._kourier_node_port(annotations, opts)

    def _kourier_node_port(self, annotations: dict[str, pulumi.Input[str]], opts: pulumi.ResourceOptions) -> None:
        cfg = self._args.config
        k8s.core.v1.ServicePatch(
            f"{self._name}-kourier-nodeport",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name="kourier",
                namespace=kourier_namespace(self._args.installed_by_csghub),
                annotations=annotations,
            ),
            spec=k8s.core.v1.ServiceSpecPatchArgs(
                type="NodePort",
                ports=[
                    k8s.core.v1.ServicePortPatchArgs(
                        name="http2", port=80, protocol="TCP", node_port=cfg.kourier.http_node_port
                    )
                ],
            ),
            opts=opts,
        )

    def _standalone(self) -> None:
        cfg = self._args.config
        base = self._args.base_dir
        opts = pulumi.ResourceOptions(parent=self, provider=self._args.provider)
        crds = k8s.yaml.v2.ConfigFile(
            f"{self._name}-serving-crds", file=manifest_file(cfg.manifests.crds, base), opts=opts
        )
        core = k8s.yaml.v2.ConfigFile(
            f"{self._name}-serving-core",
            file=manifest_file(cfg.manifests.core, base),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[crds])),
        )
        kourier = k8s.yaml.v2.ConfigFile(
            f"{self._name}-kourier",
            file=manifest_file(cfg.manifests.kourier, base),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[core])),
        )
        after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[core, kourier]))
        force: dict[str, pulumi.Input[str]] = {"pulumi.com/patchForce": "true"}
        k8s.core.v1.ConfigMapPatch(
            f"{self._name}-config-network",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name="config-network", namespace=KNATIVE_NS, annotations=force),
            data={"ingress-class": KOURIER_CLASS},
            opts=after,
        )
        k8s.core.v1.ConfigMapPatch(
            f"{self._name}-config-domain",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name="config-domain", namespace=KNATIVE_NS, annotations=force),
            data={cfg.domain: ""},
            opts=after,
        )
        k8s.core.v1.ConfigMapPatch(
            f"{self._name}-config-autoscaler",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name="config-autoscaler", namespace=KNATIVE_NS, annotations=force),
            data={
                "enable-scale-to-zero": "true" if cfg.scale_to_zero else "false",
                "scale-to-zero-grace-period": cfg.scale_to_zero_grace_period,
            },
            opts=after,
        )
        if cfg.kourier.service_type == "NodePort":
            self._kourier_node_port(force, after)
        else:
            k8s.core.v1.ServicePatch(
                f"{self._name}-kourier-service-type",
                metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                    name="kourier", namespace=KOURIER_NS_STANDALONE, annotations=force
                ),
                spec=k8s.core.v1.ServiceSpecPatchArgs(type=cfg.kourier.service_type),
                opts=after,
            )
