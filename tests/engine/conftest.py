"""Fixtures of the engine tests: the hermetic engine, a real control plane, the stack.

The cluster comes from one of two sources (`engine_cluster`):
- default: a control plane this test starts on loopback (tests/engine/controlplane.py), with
  one kwok-simulated node and the objects K3s ships that the program patches
  (tests/engine/k3s-packaged.yaml);
- `AIP_ENGINE_KUBECONFIG=<file>`: an existing cluster, e.g. the kubeconfig the program read
  back from the SSH test hosts' control plane (issue 18). The packaged objects are created
  only where missing; the node `AIP_ENGINE_NODE` gets Octopus' label for the test's time.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.engine.controlplane import ControlPlane
from tests.engine.engine import REPO, EngineEnv, tool
from tests.engine.stack import NODE, OCTOPUS_LABEL

HERE = Path(__file__).resolve().parent
ARTIFACTS = Path(os.environ.get("AIP_ENGINE_ARTIFACTS", REPO / "build" / "engine"))
ARTIFACTS.mkdir(parents=True, exist_ok=True)  # every test module writes its artifacts here

# Kinds whose objects come and go by themselves (controllers, leases, events): not part of
# "what the stack created".
VOLATILE = {
    "events",
    "events.events.k8s.io",
    "leases.coordination.k8s.io",
    "endpoints",
    "endpointslices.discovery.k8s.io",
    "componentstatuses",
    "tokenreviews.authentication.k8s.io",
}


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> None:
    """Steps of one stack's life run in order; after a failed step the later ones are skipped."""
    if "incremental" in item.keywords and call.excinfo is not None and call.when == "call":
        item.parent._failed_step = item.name  # type: ignore[union-attr]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "incremental" in item.keywords:
        failed = getattr(item.parent, "_failed_step", None)
        if failed is not None:
            pytest.skip(f"an earlier step failed: {failed}")


@dataclass
class EngineCluster:
    kubeconfig: str
    kubeconfig_path: Path
    kubectl_bin: str
    gateway_address: str
    control_plane: ControlPlane | None = None

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl_bin, "--kubeconfig", str(self.kubeconfig_path), *args],
            check=check,
            capture_output=True,
            text=True,
            input=stdin,
        )

    def get(self, *args: str) -> Any:
        return yaml.safe_load(self.kubectl("get", *args, "-o", "json").stdout)

    def exists(self, *args: str) -> bool:
        return self.kubectl("get", *args, check=False).returncode == 0

    def inventory(self) -> set[tuple[str, str, str]]:
        """Every object that is nobody's child (no ownerReferences), as (resource, namespace, name)."""
        names = self.kubectl("api-resources", "--verbs=list", "-o", "name").stdout.split()
        kinds = sorted(n for n in names if n not in VOLATILE)
        found: set[tuple[str, str, str]] = set()
        doc = self.get(",".join(kinds), "--all-namespaces")
        for obj in doc.get("items", []):
            meta = obj.get("metadata", {})
            if meta.get("ownerReferences"):
                continue
            api = obj.get("apiVersion", "")
            group = api.split("/")[0] if "/" in api else ""
            found.add((f"{obj.get('kind')}.{group}".rstrip("."), meta.get("namespace", ""), meta.get("name", "")))
        return found


def _apply_packaged(cluster: EngineCluster, only_missing: bool) -> None:
    for doc in yaml.safe_load_all((HERE / "k3s-packaged.yaml").read_text()):
        ref = [f"{doc['kind'].lower()}/{doc['metadata']['name']}"]
        if "namespace" in doc["metadata"]:
            ref += ["-n", doc["metadata"]["namespace"]]
        if only_missing and cluster.exists(*ref):
            continue
        cluster.kubectl("apply", "--server-side", "--field-manager", "k3s-packaged-standin", "-f", "-",
                        stdin=yaml.safe_dump(doc))  # fmt: skip


@pytest.fixture(scope="session")
def engine_env() -> EngineEnv:
    """The built CLI, language host and provider (scripts/tools.sh builds what is missing)."""
    python = REPO / ".venv" / "bin" / "python"
    return EngineEnv.create(python if python.exists() else None)


@pytest.fixture(scope="session")
def engine_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineCluster]:
    given = os.environ.get("AIP_ENGINE_KUBECONFIG")
    if given:
        path = Path(given)
        text = path.read_text()
        server = yaml.safe_load(text)["clusters"][0]["cluster"]["server"]
        host = server.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
        cluster = EngineCluster(text, path, str(tool("kubectl")), host)
        _apply_packaged(cluster, only_missing=True)
        label = f"{OCTOPUS_LABEL[0]}={OCTOPUS_LABEL[1]}"
        cluster.kubectl("label", "node", NODE, label, "--overwrite")
        try:
            yield cluster
        finally:
            cluster.kubectl("label", "node", NODE, f"{OCTOPUS_LABEL[0]}-", check=False)
        return
    cp = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        cp.start()
        cluster = EngineCluster(cp.kubeconfig, cp.kubeconfig_path, cp.bin["kubectl"], "127.0.0.1", cp)
        # The node Octopus runs on carries its nodeSelector label: on an existing cluster the
        # program labels no node (it does in provisioned mode), its admin does.
        cp.simulated_node(NODE, {OCTOPUS_LABEL[0]: OCTOPUS_LABEL[1]})
        _apply_packaged(cluster, only_missing=False)
        cp.wait_for(
            lambda: (
                cluster.kubectl(
                    "rollout", "status", "deployment/coredns", "-n", "kube-system", "--timeout=5s", check=False
                ).returncode
                == 0
            ),
            "the packaged CoreDNS Deployment to roll out on the simulated node",
        )
        yield cluster
    finally:
        cp.stop()
        logs = ARTIFACTS / "control-plane"
        logs.mkdir(parents=True, exist_ok=True)
        for p in cp.dir.glob("*.log"):
            (logs / p.name).write_bytes(p.read_bytes()[-2_000_000:])
