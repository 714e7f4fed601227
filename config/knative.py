"""Knative config: the Serving settings, whoever installs Serving."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from config.base import ManifestSource, Model, pinned
from config.fields import DnsName, Duration, NodePort


class Kourier(Model):
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP",
        description="Kourier service type. LoadBalancer competes with the gateway for 80/443 on K3s ServiceLB.",
    )
    http_node_port: NodePort | None = Field(default=None, description="HTTP NodePort when serviceType is NodePort.")

    @model_validator(mode="after")
    def _node_port(self) -> Kourier:
        if self.service_type == "NodePort" and self.http_node_port is None:
            raise ValueError("serviceType NodePort needs httpNodePort (30000-32767)")
        if self.service_type != "NodePort" and self.http_node_port is not None:
            raise ValueError("httpNodePort is only used with serviceType NodePort")
        return self


class KnativeManifests(Model):
    """Pinned upstream manifests for the standalone install (CSGHub layer off)."""

    crds: ManifestSource = pinned(
        "https://github.com/knative/serving/releases/download/knative-v1.21.0/serving-crds.yaml"
    )
    core: ManifestSource = pinned(
        "https://github.com/knative/serving/releases/download/knative-v1.21.0/serving-core.yaml"
    )
    kourier: ManifestSource = pinned(
        "https://github.com/knative/net-kourier/releases/download/knative-v1.21.0/kourier.yaml"
    )


class Knative(Model):
    enabled: bool = True
    domain: DnsName = Field(default="app.internal", description="Internal domain of Knative services.")
    scale_to_zero: bool = Field(default=False, description="Knative scale-to-zero (seed: off).")
    scale_to_zero_grace_period: Duration = "60m"
    kourier: Kourier = Field(default_factory=Kourier)
    manifests: KnativeManifests = Field(default_factory=KnativeManifests)
