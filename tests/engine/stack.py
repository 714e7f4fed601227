"""The engine stack: existing-cluster mode, every generated secret supplied, every layer whose
charts and manifests are on this machine (or stood in for by a local stand-in, named so).

| layer      | under the real engine here                                                   |
| ---------- | ---------------------------------------------------------------------------- |
| cluster    | existing-cluster mode: `cluster.kubeconfig` (no command: resources)          |
| storage    | local-path: StorageClassPatch of K3s' packaged `local-path` class            |
| knative    | the settings: release values + KnativeServing patch (the runner installs it) |
| gateway    | the csghub namespace (protected) and the TLS secret                          |
| csghub     | Helm release of tests/engine/standin-charts/csghub (STAND-IN: the registry   |
|            | secret the program reads back, the KnativeServing it patches), CoreDNS hosts |
| dataflow   | bundled: values of the CSGHub release                                        |
| octopus    | Helm release of the STAND-IN chart tests/engine/standin-charts/octopus: the |
|            | chart's own 5 PV + 5 PVC from the program's values, bound for real (on first |
|            | consumer: a Deployment scheduled on the kwok node)                           |
| open-hydra | OFF here (previewed in test_engine_openhydra_preview.py, real manifests):  |
|            | its InnoDBCluster waits for `.status.cluster.status=ONLINE`, which only      |
|            | the running mysql-operator (a container) writes, and its APIService patch    |
|            | waits for `Available`, which kube-aggregator sets only when open-hydra-server |
|            | answers; no container runs here (kwok simulates pods, it runs no process)    |
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STANDIN = HERE / "standin-charts"
# The node Octopus runs on (its node-local volumes are pinned to it): the kwok node of the
# loopback control plane, or AIP_ENGINE_NODE on a given cluster.
NODE = os.environ.get("AIP_ENGINE_NODE", "engine-node-0")
OCTOPUS_LABEL = ("octopus.openi.pcl.cn/node", "server")  # octopus.nodeSelectorKey/Value (defaults)
DOMAIN = "engine.test"

# Every secret of the config model that the program generates when it is absent (config/:
# "generated when absent"), as config paths. k3s.token is not here: existing-cluster mode
# provisions no node, so the program needs none.
GENERATED_SECRETS = {
    "csghub.admin.password": 24,
    "csghub.credentials.lokiPassword": 32,
    "csghub.credentials.prometheusPassword": 32,
    "octopus.credentials.tasksetAdminToken": 32,
    "octopus.credentials.minioAccessKey": 20,
    "octopus.credentials.minioSecretKey": 40,
    "octopus.credentials.mysqlRootPassword": 32,
    "octopus.credentials.redisPassword": 32,
    "octopus.credentials.harborPassword": 32,
    "octopus.credentials.adminPassword": 24,
    "octopus.credentials.grafanaPassword": 32,
    "openhydra.mysqlRootPassword": 32,
    "openhydra.admin.password": 24,
}


def password(n: int) -> str:
    """Letters and digits, each class present (the components' own password rules)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        p = "".join(secrets.choice(alphabet) for _ in range(n))
        if any(c.islower() for c in p) and any(c.isupper() for c in p) and any(c.isdigit() for c in p):
            return p


def self_signed(dir_: Path) -> tuple[str, str]:
    """A certificate and key for csghub.<domain> (the gateway's TLS secret)."""
    dir_.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.crt",
         "-days", "2", "-subj", f"/CN=csghub.{DOMAIN}", "-addext", f"subjectAltName=DNS:*.{DOMAIN}"],
        cwd=dir_, check=True, capture_output=True,
    )  # fmt: skip
    return (dir_ / "tls.crt").read_text(), (dir_ / "tls.key").read_text()


def hostpath(name: str) -> dict[str, Any]:
    return {"size": "1Gi", "source": {"hostPath": {"path": f"/data/octopus/{name}", "type": "DirectoryOrCreate"}}}


@dataclass(frozen=True)
class EngineStack:
    plain: dict[str, Any]  # the stack file's config: (full key → value)
    secrets: dict[str, str]  # full config path → secret value (set with `pulumi config set --secret --path`)


def engine_stack(kubeconfig: str, gateway_address: str, work: Path) -> EngineStack:
    cert, key = self_signed(work / "tls")
    plain: dict[str, Any] = {
        "pulumi:disable-default-providers": ["kubernetes"],
        "ai-platform:cluster": {},
        "ai-platform:storage": {"mode": "local-path"},
        "ai-platform:knative": {"domain": "app.internal", "kourier": {"serviceType": "ClusterIP"}},
        "ai-platform:gateway": {"serviceType": "NodePort", "address": gateway_address, "tls": {"certificate": cert}},
        "ai-platform:csghub": {
            "domain": DOMAIN,
            "chart": {
                "repository": "https://charts.opencsg.com/csghub",
                "name": "csghub",
                "version": "1.17.0",
                "localPath": str(STANDIN / "csghub"),  # STAND-IN (tests/engine/standin-charts/csghub)
            },
            "admin": {"username": "admin"},
        },
        "ai-platform:dataflow": {
            "enabled": True,
            "persistence": {"storageClass": "local-path", "accessModes": ["ReadWriteOnce"], "size": "1Gi"},
        },
        "ai-platform:octopus": {
            "repo": {
                "url": "https://harbor.invalid/chartrepo/octopus",
                "version": "0.1.0",
                "localPath": str(STANDIN / "octopus"),  # STAND-IN (tests/engine/standin-charts/octopus)
            },
            "nodes": [NODE],
            "volumes": {
                "minio": hostpath("minio"),
                "mysql": hostpath("mysql"),
                "redis": hostpath("redis"),
                "logger": hostpath("logger"),
                # any PersistentVolumeSource: one NFS volume (nothing mounts it here)
                "logstash": {"size": "1Gi", "source": {"nfs": {"server": "127.0.0.1", "path": "/exports/logstash"}}},
            },
            "credentials": {"harborUser": "robot-octopus", "adminUser": "admin"},
        },
        "ai-platform:openhydra": {"enabled": False},
    }
    given = {f"ai-platform:{path}": password(n) for path, n in GENERATED_SECRETS.items()}
    given["ai-platform:cluster.kubeconfig"] = kubeconfig
    given["ai-platform:gateway.tls.key"] = key
    return EngineStack(plain, given)
