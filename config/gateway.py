"""Gateway config: the CSGHub chart's Envoy Gateway, the one owner of external traffic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from config.base import Model, Secret
from config.fields import Host, K8sObjectName, NodePort, Pem


class GatewayNodePorts(Model):
    http: NodePort = 30080
    https: NodePort = 30443
    gitssh: NodePort = 30022


class Tls(Model):
    certificate: Pem = Field(description="PEM certificate chain (public).")
    key: Secret = Field(description="PEM private key (secret).")
    secret_name: K8sObjectName = "csghub-tls"


class Gateway(Model):
    """The CSGHub chart's Envoy Gateway: the one owner of external traffic."""

    enabled: bool = True
    service_type: Literal["LoadBalancer", "NodePort"] = Field(
        default="NodePort",
        description="LoadBalancer: on K3s' ServiceLB the gateway takes ports 80, 443 and 22 (git over SSH) on "
        "every node, so the nodes' own sshd must listen elsewhere (refused otherwise). NodePort: 30080/30443/30022.",
    )
    node_ports: GatewayNodePorts = Field(default_factory=GatewayNodePorts)
    tls: Tls | None = Field(default=None, description="TLS certificate for the gateway; plain HTTP when absent.")
    address: Host | None = Field(
        default=None,
        description="Where users and nodes reach the gateway. Default: the first server's host (ServiceLB and "
        "NodePorts answer on every node). Another address (a VIP, an external load balancer) must be served by "
        "something outside this program: it goes into CoreDNS, the nodes' /etc/hosts and the URL outputs.",
    )
