"""gpu-node.sh run for real in the sandbox, against stand-in `apt-get`, `dpkg`, `curl`, `gpg`
and `nvidia-smi`/`nvidia-container-runtime` (no GPU here: the stand-ins record what they were
asked and, when "installed", appear on PATH as the real packages' commands would)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.scripts.sandbox import Sandbox

# An installer stand-in: records its arguments; installing the toolkit (apt) or any .deb
# (dpkg) makes nvidia-smi and nvidia-container-runtime appear.
FAKE_PKG = r"""#!/usr/bin/env bash
echo "$(basename "$0") $*" >>"$AIP_ROOT/pkg.log"
case " $* " in
  *" install "*nvidia-container-toolkit* | *" -i "*)
    for c in nvidia-smi nvidia-container-runtime; do
      printf '#!/bin/sh\necho "GPU 0: stand-in"\n' >"$AIP_ROOT/fakebin/$c"; chmod 755 "$AIP_ROOT/fakebin/$c"
    done ;;
esac
"""
FAKE_CURL = "#!/bin/sh\necho stand-in-key\n"
FAKE_GPG = '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && { cat >"$2"; exit 0; }; shift; done\n'


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sb = Sandbox(tmp_path / "root")
    sb.setup()
    for name, text in (("apt-get", FAKE_PKG), ("dpkg", FAKE_PKG), ("curl", FAKE_CURL), ("gpg", FAKE_GPG)):
        f = sb.root / "fakebin" / name
        f.write_text(text)
        f.chmod(0o755)
    return sb


def os_release(box: Sandbox, ident: str, like: str = "") -> None:
    etc = box.root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "os-release").write_text(f'ID={ident}\nID_LIKE="{like}"\nPRETTY_NAME="{ident} stand-in"\n')


def run(box: Sandbox, **args: str) -> subprocess.CompletedProcess[str]:
    return box.run("gpu-node.sh", {"node": "gpu-7", "role": "agent", **args})


def pkg_log(box: Sandbox) -> list[str]:
    f = box.root / "pkg.log"
    return f.read_text().splitlines() if f.exists() else []


def test_preinstalled_without_the_runtime_fails_naming_the_node_and_what_is_missing(box: Sandbox) -> None:
    proc = run(box, driver="preinstalled")
    assert proc.returncode == 1
    assert "node gpu-7: cluster.gpu.driver is preinstalled" in proc.stderr
    assert "nvidia-container-runtime" in proc.stderr and "NVIDIA driver" in proc.stderr
    assert pkg_log(box) == []


def test_online_install_on_ubuntu_then_a_second_run_installs_nothing(box: Sandbox) -> None:
    os_release(box, "ubuntu", "debian")
    proc = run(box, driver="install", branch="535", mode="online")
    assert proc.returncode == 0, proc.stderr
    log = pkg_log(box)
    assert "apt-get update -qq" in log
    assert "apt-get install -y -qq nvidia-driver-535-server nvidia-container-toolkit" in log
    assert (box.root / "etc/apt/sources.list.d/nvidia-container-toolkit.list").is_file()
    assert box.events() == []  # K3s not running yet: nothing to restart
    again = run(box, driver="install", branch="535", mode="online")
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert pkg_log(box) == log


def test_the_runtime_appearing_under_a_running_k3s_restarts_it_once(box: Sandbox) -> None:
    os_release(box, "debian")
    (box.root / "run").mkdir(exist_ok=True)
    (box.root / "run" / "svc-k3s-agent").touch()
    assert run(box, driver="install", mode="online").returncode == 0
    assert box.events() == ["restart k3s-agent"]
    assert run(box, driver="install", mode="online").returncode == 0
    assert box.events() == ["restart k3s-agent"]


def test_airgap_installs_the_uploaded_packages(box: Sandbox) -> None:
    os_release(box, "ubuntu", "debian")
    pkgs = box.root / "pkgs"
    pkgs.mkdir()
    for name in ("nvidia-driver-535.deb", "nvidia-container-toolkit.deb"):
        (pkgs / name).write_text("deb")
    proc = run(box, driver="install", mode="airgap", packages=str(pkgs))
    assert proc.returncode == 0, proc.stderr
    assert [line.split(" ", 2)[:2] for line in pkg_log(box)] == [["dpkg", "-i"]]
    assert not any(line.startswith("apt-get") for line in pkg_log(box))  # nothing fetched


def test_an_unsupported_os_is_refused_naming_the_node(box: Sandbox) -> None:
    os_release(box, "alpine")
    proc = run(box, driver="install", mode="online")
    assert proc.returncode == 1
    assert "node gpu-7: installing the NVIDIA driver is supported on Debian and Ubuntu" in proc.stderr
    assert "cluster.gpu.driver: preinstalled" in proc.stderr
    assert pkg_log(box) == []
