"""Gateway: the CSGHub chart's bundled Envoy Gateway, the one owner of external traffic.

This component decides how traffic gets in — LoadBalancer (K3s ServiceLB) or NodePort
with 80→30080, 443→30443 and 22→30022 (git over SSH to gitlab-shell) — owns the CSGHub
namespace and the TLS secret built from the configured certificate and key, hands the
`global.gateway` values to the CSGHub release, and outputs the external address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from config.gateway import Gateway


def gateway_values(cfg: Gateway, domain: str, public_domain: str | None) -> dict[str, Any]:
    """The CSGHub release's `global.gateway` values."""
    service: dict[str, Any] = {"type": cfg.service_type}
    if cfg.service_type == "NodePort":
        service["nodePorts"] = cfg.node_ports.model_dump()
    external: dict[str, Any] = {"domain": domain}
    if public_domain:
        external["public"] = public_domain
    tls: dict[str, Any] = {"enabled": cfg.tls is not None}
    if cfg.tls is not None:
        tls["secretName"] = cfg.tls.secret_name
    return {"service": service, "external": external, "tls": tls}


@dataclass(frozen=True)
class GatewayArgs:
    config: Gateway
    provider: k8s.Provider
    namespace: str
    domain: str
    public_domain: str | None
    # Where users reach the gateway when no address is configured (first server's host).
    default_address: pulumi.Input[str]


class GatewayLayer(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    address: pulumi.Output[str]
    ports: pulumi.Output[dict[str, int]]

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:Gateway", name, None, opts)
        cfg = args.config
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.namespace),
            # Deleting the namespace would delete every volume of the platform in it.
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(protect=True)),
        )
        self.namespace = ns.metadata.apply(lambda m: m.name or args.namespace)
        if cfg.tls is not None:
            k8s.core.v1.Secret(
                f"{name}-tls",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=cfg.tls.secret_name, namespace=self.namespace),
                type="kubernetes.io/tls",
                string_data={
                    "tls.crt": cfg.tls.certificate,
                    "tls.key": pulumi.Output.secret(cfg.tls.key.get_secret_value()),
                },
                opts=k8s_opts,
            )
        self.address = pulumi.Output.from_input(cfg.address or args.default_address)
        if cfg.service_type == "NodePort":
            ports = cfg.node_ports.model_dump()
        else:
            ports = {"http": 80, "https": 443, "gitssh": 22}
        self.ports = pulumi.Output.from_input(ports)
        self.register_outputs({"address": self.address, "ports": self.ports, "namespace": self.namespace})
