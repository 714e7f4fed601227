"""Helpers for the host tests and bench/bootstrap.py: a cluster-only stack config pointed at
the SSH test hosts, and the stand-in airgap bundle (which runs the real control plane that
scripts/tools.sh builds). No fixtures here (each test module brings up its own hosts)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.conftest import cluster_only
from tests.hosts.testhosts import Host
from tests.standin.make_bundle import IMAGES_NAME, ensure_tools, make_bundle

VERSION = "v1.30.4+k3s1"
REGISTRY = "registry.test.internal"


def bundle(out: Path, delay: float = 0.0, version: str = VERSION) -> dict[str, Path]:
    """The stand-in airgap bundle (k3s, images, install.sh) with an extra start-up delay; the
    control-plane binaries it runs are built first if missing (scripts/tools.sh)."""
    ensure_tools()
    return make_bundle(version, delay, out)


def node(host: Host, host_key: str | None = None) -> dict[str, Any]:
    """A node named after its test host (h1, h2, ...), with the host's pinned key."""
    return {"name": host.name, "host": host.address, "port": host.port, "hostKey": host_key or host.host_key}


def stack_config(
    servers: Sequence[Host],
    agents: Sequence[Host],
    *,
    bundle_dir: Path,
    token: str,
    registry_password: str,
    user: str = "aiptest",
    mirror: str = "https://mirror-a.test.internal",
    host_keys: dict[str, str] | None = None,
    ready_timeout: int = 60,
    version: str = VERSION,
    dial_error_limit: int = 2,
    per_dial_timeout: int = 3,
    airgap_files: bool = False,
) -> dict[str, Any]:
    """cluster_only() pointed at the test hosts: airgap install from BUNDLE_DIR, SSH as USER with
    the test client key, each host's pinned key (or HOST_KEYS[name]), a registry mirror and a
    registry login (its password is a secret on stdin). The bundle is uploaded as one directory
    (`airgap.dir`, as Pulumi.prod.yaml does), or with AIRGAP_FILES as its three files."""
    hosts = [*servers, *agents]
    client_key = Path(hosts[0].client_key_path).read_text()
    keys = host_keys or {}
    raw = cluster_only(servers=0, agents=0)
    raw["openhydra"] = {"enabled": False}
    raw["cluster"] = {
        "ssh": {
            "user": user,
            "port": 22,
            "privateKey": client_key,
            "dialErrorLimit": dial_error_limit,
            "perDialTimeout": per_dial_timeout,
        },
        "k3s": {
            "version": version,
            "install": "airgap",
            "airgap": {
                "binary": str(bundle_dir / "k3s"),
                "images": str(bundle_dir / IMAGES_NAME),
                "installScript": str(bundle_dir / "install.sh"),
            }
            if airgap_files
            else {"dir": str(bundle_dir)},
            "token": token,
            "readyTimeoutSeconds": ready_timeout,
            "registries": {
                "mirrors": {"docker.io": {"endpoints": [mirror]}},
                "configs": {REGISTRY: {"auth": {"username": "pull", "password": registry_password}}},
            },
        },
        "servers": [node(h, keys.get(h.name)) for h in servers],
        "agents": [node(h, keys.get(h.name)) for h in agents],
    }
    return raw
