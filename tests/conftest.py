"""Shared test helpers: stack configs as data, and the program run under mocks."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, settings  # noqa: E402

from stacks import mockrun  # noqa: E402

# Hypothesis: `make test` runs a fixed, derandomized profile (no example database relied
# upon), so every run is the same run; `make fuzz` runs the same properties at random with
# many more examples.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures of the generated-input properties (what `make fuzz` prints)."""
    from tests.unit import test_hostile_config as hostile

    if hostile.STATS:
        line = ", ".join(f"{k}: {v}" for k, v in sorted(hostile.STATS.items()))
        terminalreporter.write_line(f"hostile config: {line}")


HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGV4YW1wbGUtVGVzdEhvc3RLZS1SRVBMQUNFLVdJVEgt"


def node(name: str, host: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "host": host, "hostKey": HOST_KEY, **extra}


def cluster_only(servers: int = 1, agents: int = 2, **k3s: Any) -> dict[str, Any]:
    """A valid cluster-only stack config (every platform layer off)."""
    return {
        "cluster": {
            "ssh": {"user": "root", "privateKey": "test-private-key"},
            "k3s": {"version": "v1.30.4+k3s1", **k3s},
            "servers": [node(f"s{i}", f"10.0.0.{10 + i}") for i in range(servers)],
            "agents": [node(f"a{i}", f"10.0.1.{10 + i}") for i in range(agents)],
        },
        "storage": {"enabled": False},
        "knative": {"enabled": False},
        "gateway": {"enabled": False},
        "csghub": {"enabled": False},
    }


def standalone_dataflow(**dataflow: Any) -> dict[str, Any]:
    """cluster_only() with Dataflow on its own (CSGHub off), plus overrides of its keys."""
    raw = cluster_only()
    raw["dataflow"] = {
        "enabled": True,
        "standalone": True,
        "domain": "df.example.com",
        "externalUrl": "https://hub.example.com",
        **dataflow,
    }
    return raw


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The types of the resources the program registers (the Stack itself left out)."""
    from stacks import mockrun

    seen: list[str] = []
    real = mockrun.RecordingMonitor.RegisterResource

    def spy(self: Any, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            seen.append(request.type)
        return real(self, request)

    monkeypatch.setattr(mockrun.RecordingMonitor, "RegisterResource", spy)
    return seen


def with_(cfg: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of cfg with one dotted path set (list indexes as numbers)."""
    out = copy.deepcopy(cfg)
    keys = path.split(".")
    node_: Any = out
    for k in keys[:-1]:
        node_ = node_[int(k)] if isinstance(node_, list) else node_.setdefault(k, {})
    last = keys[-1]
    if isinstance(node_, list):
        node_[int(last)] = value
    else:
        node_[last] = value
    return out


def run_program(raw: dict[str, Any], stack: str = "test", project_dir: Path = ROOT) -> mockrun.Recording:
    return mockrun.run(raw, stack, project_dir)


def stand_in_airgap(dir_: Path) -> None:
    """Files where a stack's airgap/ bundle and certs are expected (content irrelevant to the plan)."""
    (dir_ / "airgap" / "k3s-bundle").mkdir(parents=True, exist_ok=True)
    for name in ("k3s", "k3s-airgap-images-amd64.tar.zst", "install.sh"):
        (dir_ / "airgap" / "k3s-bundle" / name).write_text(f"stand-in {name} for plan tests\n")
    from config.load import read_stack_file

    prod, _ = read_stack_file(ROOT / "Pulumi.prod.yaml")
    for package in prod["cluster"].get("gpu", {}).get("airgap", {}).get("packages", []):
        (dir_ / package).parent.mkdir(parents=True, exist_ok=True)
        (dir_ / package).write_text(f"stand-in {package} for plan tests\n")
    (dir_ / "certs").mkdir(exist_ok=True)
    (dir_ / "certs" / "harbor-ca.crt").write_text("stand-in CA for plan tests\n")


@pytest.fixture
def prod_dir(tmp_path: Path) -> Path:
    """A copy of the prod stack file beside stand-in airgap files."""
    (tmp_path / "Pulumi.prod.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
    stand_in_airgap(tmp_path)
    return tmp_path


def platform(**layers: Any) -> dict[str, Any]:
    """cluster_only() with storage, Knative, the gateway and CSGHub on (plus overrides)."""
    raw = cluster_only()
    raw.update({"storage": {}, "knative": {}, "gateway": {}, "csghub": {"domain": "ai.example.com"}})
    for key, value in layers.items():
        raw[key] = value
    return raw
