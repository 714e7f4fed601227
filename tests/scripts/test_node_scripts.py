"""The node scripts, run for real in a sandbox root: idempotence, restarts only on
change, rollback when a restart fails, secrets never on the command line."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from components import scripts
from tests.scripts.sandbox import FakeKubelet, Sandbox, config_yaml

V1, V2 = "v1.30.4+k3s1", "v1.30.5+k3s1"
REG1 = "mirrors:\n  docker.io:\n    endpoint: [https://m1.example]\n"
REG2 = "mirrors:\n  docker.io:\n    endpoint: [https://m2.example]\n"


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sb = Sandbox(tmp_path / "root")
    sb.setup()
    sb.make_bundle(V1)
    return sb


@pytest.fixture
def kubelet(box: Sandbox) -> Iterator[FakeKubelet]:
    k = FakeKubelet(box.root)
    yield k
    k.close()


def install(
    sb: Sandbox,
    version: str = V1,
    config: str | None = None,
    token: str = "tok-1",
    reg: str = REG1,
    role: str = "server",
    healthz: str | None = None,
):
    return sb.run(
        "k3s-install.sh",
        {
            **({"healthz": healthz} if healthz else {}),
            "role": role,
            "version": version,
            "install": "airgap",
            "gpu": "false",
            "timeout": "5",
            "config": scripts.b64(config or config_yaml()),
            "bundle": str(sb.bundle),
            "images": "images.tar",
        },
        {"token": token, "registries": reg},
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_first_install_writes_settings_and_installs(box: Sandbox) -> None:
    out = ok(install(box))
    etc = box.root / "etc/rancher/k3s"
    assert (etc / "config.yaml").read_text() == config_yaml()
    assert (etc / "cluster-token").read_text() == "tok-1"
    assert (etc / "registries.yaml").read_text() == REG1
    for f in ("config.yaml", "cluster-token", "registries.yaml"):
        assert oct((etc / f).stat().st_mode & 0o777) == "0o600", f
    assert (box.root / "var/lib/rancher/k3s/agent/images/images.tar").exists()
    assert box.events() == [f"install server {V1}", "restart k3s"]
    assert "K3s v1.30.4+k3s1 server installed" in out


def test_second_run_changes_nothing(box: Sandbox) -> None:
    ok(install(box))
    before, events = box.snapshot(), box.events()
    out = ok(install(box))
    assert box.snapshot() == before
    assert box.events() == events
    assert out.strip().endswith("unchanged")


def test_config_change_restarts_once_and_keeps_no_backup(box: Sandbox) -> None:
    ok(install(box))
    ok(install(box, config=config_yaml() + "node-label: [a=b]\n"))
    assert box.events()[-1] == "restart k3s"
    assert box.events().count("restart k3s") == 2
    assert not list((box.root / "etc/rancher/k3s").glob("*.aip-prev"))


def test_install_never_rewrites_an_existing_registries_file(box: Sandbox) -> None:
    ok(install(box))
    ok(install(box, reg=REG2))
    assert (box.root / "etc/rancher/k3s/registries.yaml").read_text() == REG1
    assert box.events().count("restart k3s") == 1


def test_version_change_upgrades_through_the_installer(box: Sandbox) -> None:
    ok(install(box))
    box.make_bundle(V2)
    ok(install(box, version=V2))
    assert box.events()[-2:] == [f"install server {V2}", "restart k3s"]


def test_stopped_service_is_started_on_rerun(box: Sandbox) -> None:
    ok(install(box))
    (box.root / "run/svc-k3s").unlink()
    ok(install(box))
    assert box.events()[-1] == "start k3s"


def test_registries_change_restarts_only_when_content_changes(box: Sandbox) -> None:
    ok(install(box))
    ok(box.run("k3s-registries.sh", {"role": "server", "timeout": "5"}, {"registries": REG1}))
    assert box.events().count("restart k3s") == 1
    ok(box.run("k3s-registries.sh", {"role": "server", "timeout": "5"}, {"registries": REG2}))
    assert box.events().count("restart k3s") == 2
    assert (box.root / "etc/rancher/k3s/registries.yaml").read_text() == REG2


def test_failed_restart_rolls_back(box: Sandbox) -> None:
    ok(install(box))
    (box.root / "fail-restart").write_text("m2.example")  # the fake K3s refuses to start with REG2
    proc = box.run("k3s-registries.sh", {"role": "server", "timeout": "3"}, {"registries": REG2})
    assert proc.returncode == 1
    assert "previous settings restored" in proc.stderr
    assert (box.root / "etc/rancher/k3s/registries.yaml").read_text() == REG1
    assert (box.root / "run/svc-k3s").exists(), "K3s must be running again with the old file"
    assert not (box.root / "etc/rancher/k3s/registries.yaml.aip-prev").exists()


CA_DIR = "/etc/rancher/k3s/ai-platform-ca"


def certs(*items: tuple[str, str]) -> str:
    return "".join(f"{path}\t{scripts.b64(pem)}\n" for path, pem in items)


def test_registry_cas_are_written_replaced_and_removed_with_one_restart_each(box: Sandbox) -> None:
    ok(install(box))
    ca = f"{CA_DIR}/harbor.example.org.crt"
    run = lambda c: box.run("k3s-registries.sh", {"role": "server", "timeout": "5"}, {"registries": REG1, "certs": c})  # noqa: E731
    ok(run(certs((ca, "PEM-1\n"))))
    assert (box.root / ca.lstrip("/")).read_text() == "PEM-1\n"
    assert oct((box.root / ca.lstrip("/")).stat().st_mode & 0o777) == "0o644"
    assert box.events().count("restart k3s") == 2  # install, then the new CA (registries.yaml unchanged)
    ok(run(certs((ca, "PEM-1\n"))))
    assert box.events().count("restart k3s") == 2  # same CA: nothing
    ok(run(certs((ca, "PEM-2\n"))))
    assert (box.root / ca.lstrip("/")).read_text() == "PEM-2\n" and box.events().count("restart k3s") == 3
    ok(run(""))
    assert not (box.root / ca.lstrip("/")).exists() and box.events().count("restart k3s") == 4
    assert (box.root / "etc/rancher/k3s/registries.yaml").read_text() == REG1  # never removed by a CA change


@pytest.mark.parametrize(
    "path", ["/etc/passwd", f"{CA_DIR}/../../../etc/shadow", f"{CA_DIR}/x y.crt", f"{CA_DIR}/.hidden"]
)
def test_a_ca_path_outside_its_directory_is_refused(box: Sandbox, path: str) -> None:
    ok(install(box))
    proc = box.run(
        "k3s-registries.sh", {"role": "server", "timeout": "5"}, {"registries": REG1, "certs": certs((path, "X"))}
    )
    assert proc.returncode == 1 and "refusing CA file path" in proc.stderr
    assert not (box.root / "etc/passwd").exists()


@pytest.mark.skipif(
    shutil.which("mount.nfs", path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin") is not None,
    reason="this machine has an NFS client: the 'missing' case cannot be staged here",
)
def test_nfs_stacks_refuse_a_node_without_the_nfs_client_naming_it(box: Sandbox) -> None:
    args = {
        "role": "server",
        "version": V1,
        "install": "airgap",
        "gpu": "false",
        "nfs": "true",
        "node": "worker-7",
        "timeout": "5",
        "config": scripts.b64(config_yaml()),
        "bundle": str(box.bundle),
        "images": "images.tar",
    }
    proc = box.run("k3s-install.sh", args, {"token": "t", "registries": REG1})
    assert proc.returncode == 1
    assert "node worker-7: the stack mounts NFS volumes, but mount.nfs is missing" in proc.stderr
    assert box.events() == []  # refused before anything was installed
    fake = box.root / "fakebin" / "mount.nfs"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    ok(box.run("k3s-install.sh", args, {"token": "t", "registries": REG1}))


def test_registries_before_install_writes_without_restart(box: Sandbox) -> None:
    ok(box.run("k3s-registries.sh", {"role": "agent", "timeout": "3", "healthz": "none"}, {"registries": REG1}))
    assert box.events() == []


def agent_registries(
    box: Sandbox, healthz: str, reg: str = REG2, timeout: str = "5"
) -> subprocess.CompletedProcess[str]:
    return box.run("k3s-registries.sh", {"role": "agent", "timeout": timeout, "healthz": healthz}, {"registries": reg})


def test_agent_restart_returns_only_once_its_kubelet_answers(box: Sandbox, kubelet: FakeKubelet) -> None:
    ok(install(box, role="agent", healthz=kubelet.address))
    kubelet.delay = 2.0  # the agent's unit is Type=exec: "active" at once, the kubelet 2 s later
    t0 = time.monotonic()
    out = ok(agent_registries(box, kubelet.address))
    assert time.monotonic() - t0 >= 2.0, out
    assert box.events()[-1] == "restart k3s-agent"
    assert "k3s-agent after restart: ok after" in out


def test_agent_whose_kubelet_never_answers_is_rolled_back(box: Sandbox, kubelet: FakeKubelet) -> None:
    ok(install(box, role="agent", healthz=kubelet.address))
    kubelet.broken = True
    proc = agent_registries(box, kubelet.address, timeout="2")
    assert proc.returncode == 1
    assert "timed out after 2s waiting for k3s-agent after restart" in proc.stderr
    assert "previous settings restored" in proc.stderr
    assert (box.root / "etc/rancher/k3s/registries.yaml").read_text() == REG1


def test_agent_install_waits_for_its_kubelet(box: Sandbox, kubelet: FakeKubelet) -> None:
    kubelet.broken = True
    proc = install(box, role="agent", healthz=kubelet.address)
    assert proc.returncode == 1 and "K3s did not become ready on this node" in proc.stderr
    kubelet.broken = False
    ok(install(box, role="agent", healthz=kubelet.address))


def test_agent_with_kubelet_healthz_off_is_ready_when_active(box: Sandbox) -> None:
    ok(install(box, role="agent", healthz="none"))
    ok(agent_registries(box, "none"))
    assert box.events()[-1] == "restart k3s-agent"


def test_agent_scripts_require_the_probe_argument(box: Sandbox) -> None:
    proc = box.run("k3s-registries.sh", {"role": "agent", "timeout": "3"}, {"registries": REG1})
    assert proc.returncode == 1 and "missing argument healthz=" in proc.stderr


def test_uninstall_removes_what_install_made_and_is_repeatable(box: Sandbox) -> None:
    ok(install(box))
    out = ok(box.run("k3s-uninstall.sh", {"role": "server"}))
    assert "running k3s-uninstall.sh" in out
    assert not (box.root / "etc/rancher/k3s").exists()
    assert not (box.root / "usr/local/bin/k3s").exists()
    assert "K3s is not installed" in ok(box.run("k3s-uninstall.sh", {"role": "server"}))


def test_missing_payload_fails_clearly(box: Sandbox) -> None:
    proc = box.run("k3s-registries.sh", {"role": "server"}, {})
    assert proc.returncode == 1 and "payload 'registries' missing on stdin" in proc.stderr


def test_incomplete_bundle_fails_clearly(box: Sandbox) -> None:
    (box.bundle / "install.sh").unlink()
    proc = install(box)
    assert proc.returncode == 1 and "airgap bundle incomplete" in proc.stderr


def test_k3s_that_does_not_start_fails_with_its_own_log(box: Sandbox) -> None:
    """The installer's "Job for k3s.service failed" says nothing; the step's error must say why."""
    why = 'level=fatal msg="starting kubernetes: preparing server: bootstrap data already found"\n'
    (box.root / "fail-start").write_text(why)
    proc = install(box)
    assert proc.returncode == 1
    assert "the K3s installer failed (exit 1): k3s did not start" in proc.stderr
    assert "the last lines of k3s's log:" in proc.stderr and "  | " + why.strip() in proc.stderr


def test_node_ready_times_out_naming_the_node(box: Sandbox) -> None:
    proc = box.run("k3s-node-ready.sh", {"node": "worker-7", "timeout": "2"})
    assert proc.returncode == 1
    assert "node worker-7 did not become Ready within 2s" in proc.stderr


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck not installed (scripts/setup.sh installs it)"
)
@pytest.mark.parametrize("name", sorted(p.name for p in scripts.SCRIPTS_DIR.glob("*.sh") if p.name != "lib.sh"))
def test_rendered_scripts_are_shellcheck_clean(name: str, tmp_path: Path) -> None:
    f = tmp_path / name
    f.write_text("#!/usr/bin/env bash\n" + scripts.render(name))
    proc = subprocess.run(["shellcheck", "-x", str(f)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
