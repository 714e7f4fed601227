"""The test hosts (scripts/testhosts.sh) and the stand-in K3s bundle (tests/standin/) themselves.

Three SSH hosts in network namespaces; a stand-in server on h1 (the real control plane), an
agent on h2 (as the sudo user), a wrong-token agent then a joining server on h3. Needs root and
`ip netns`, and the binaries scripts/tools.sh builds (built first if missing).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hosts.testhosts import (
    Host,
    TestHosts,
    copy_to,
    count_events,
    process_cmdlines,
    run,
    secret_exposures,
    ssh_command,
    sudo_log,
    unsupported_reason,
)
from tests.standin.make_bundle import IMAGES_NAME, ensure_tools, make_bundle

_REASON = unsupported_reason()
pytestmark = [pytest.mark.hosts, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]

VERSION = "v1.30.4+k3s1"
BUNDLE = "/var/tmp/ai-platform/k3s-airgap"
SERVER_URL = "https://10.231.0.11:6443"
READY_JSONPATH = "'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}'"


class Cluster:
    """What the module's tests share: the hosts and the cluster token."""

    def __init__(self, th: TestHosts, hosts: list[Host], token: str):
        self.th = th
        self.hosts = hosts
        self.token = token
        self.h1, self.h2, self.h3 = hosts


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    bundle = tmp_path_factory.mktemp("bundle")
    ensure_tools()
    make_bundle(VERSION, 0, bundle)
    th = TestHosts(3)
    hosts = th.up()
    try:
        for h in hosts:
            run(h, f"mkdir -p {BUNDLE}", check=True)
            for name in ("k3s", "install.sh", IMAGES_NAME):
                copy_to(h, bundle / name, f"{BUNDLE}/{name}")
        yield Cluster(th, hosts, "tok-" + secrets.token_hex(12))
    finally:
        th.down()


def install(host: Host, role: str, token: str, config: str, user: str = "root") -> subprocess.CompletedProcess[str]:
    """An airgap install the way the node scripts do it: token and config through stdin/files."""
    sudo = "sudo " if user != "root" else ""
    script = (
        "set -e; umask 077; "
        f"{sudo}mkdir -p /etc/rancher/k3s; "
        f"IFS= read -r tok; printf '%s' \"$tok\" | {sudo}tee /etc/rancher/k3s/cluster-token >/dev/null; "
        f"{sudo}tee /etc/rancher/k3s/config.yaml >/dev/null; "
        f"{sudo}install -D -m 0755 {BUNDLE}/k3s /usr/local/bin/k3s; "
        f"{sudo}install -D -m 0644 {BUNDLE}/{IMAGES_NAME} /var/lib/rancher/k3s/agent/images/{IMAGES_NAME}; "
        f"{sudo}env INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_VERSION={VERSION} INSTALL_K3S_EXEC={role} "
        f"sh {BUNDLE}/install.sh"
    )
    return run(host, script, user=user, input=token + "\n" + config, timeout=60)


def kubectl(host: Host, args: str) -> subprocess.CompletedProcess[str]:
    return run(host, f"k3s kubectl {args}")


ETCDCTL = (
    "/run/aip-tools/etcd-v3.5.12/etcdctl --endpoints=https://127.0.0.1:2379"
    " --cacert=/var/lib/rancher/k3s/server/tls/etcd/server-ca.crt"
    " --cert=/var/lib/rancher/k3s/server/tls/etcd/client.crt --key=/var/lib/rancher/k3s/server/tls/etcd/client.key"
)


def members(server: Host) -> list[str]:
    """The etcd member names (`<node>-<hex>`), from the real etcd on SERVER."""
    r = run(server, f"{ETCDCTL} member list -w json", check=True)
    return sorted(m["name"] for m in json.loads(r.stdout)["members"])


def ready(server: Host, node: str) -> str:
    r = kubectl(server, f"get node {node} -o {READY_JSONPATH}")
    return r.stdout.strip() if r.returncode == 0 else f"error: {r.stderr.strip()}"


def wait_until(fn, timeout: float = 15, interval: float = 0.25):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def netns_cmdlines(host: Host) -> list[str]:
    pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True).stdout.split()
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            pass
    return out


# ------------------------------------------------------------------ hosts


def test_hosts_json(cluster: Cluster) -> None:
    raw = json.loads(Path(cluster.th.state_dir, "hosts.json").read_text())
    assert [h["name"] for h in raw] == ["h1", "h2", "h3"]
    assert [h["address"] for h in raw] == ["10.231.0.11", "10.231.0.12", "10.231.0.13"]
    for h in cluster.hosts:
        assert h.port == 22
        assert re.fullmatch(r"ssh-ed25519 AAAA[0-9A-Za-z+/=]+", h.host_key)
        assert set(h.users) == {"root", "aiptest"}
        assert Path(h.client_key_path).stat().st_mode & 0o077 == 0
        assert Path(h.password_path).stat().st_mode & 0o077 == 0
    assert len({h.host_key for h in cluster.hosts}) == 3, "each host has its own host key"


def test_ssh_root_and_aiptest_with_key(cluster: Cluster) -> None:
    for h in cluster.hosts:
        r = run(h, "id -un; hostname", check=True)
        assert r.stdout.split() == ["root", h.name]
        r = run(h, "id -un; sudo -n id -un", user="aiptest", check=True)
        assert r.stdout.split() == ["aiptest", "root"]


def test_aiptest_password_login(cluster: Cluster, tmp_path: Path) -> None:
    h = cluster.h2
    r = run(h, "id -un", user="aiptest", password=True)
    assert (r.returncode, r.stdout.strip()) == (0, "aiptest"), r.stderr
    # a wrong password is refused, and root has no password login at all
    askpass = tmp_path / "askpass.sh"
    askpass.write_text("#!/bin/sh\necho wrong-password\n")
    askpass.chmod(0o700)
    env = {"PATH": "/usr/bin:/bin", "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
    for user in ("aiptest", "root"):
        r2 = subprocess.run(
            ssh_command(h, "id -un", user, password=True),
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        assert r2.returncode == 255 and "Permission denied" in r2.stderr, (user, r2.stderr)
    assert "Failed password for aiptest" in Path(h.state_dir, "sshd.log").read_text()


def test_wrong_pinned_host_key_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    h1, h2 = cluster.h1, cluster.h2
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{h1.address} {h2.host_key}\n")  # h2's key pinned for h1's address
    r = run(h1, "true", known_hosts=str(wrong))
    assert r.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr or "verification failed" in r.stderr
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    r = run(h1, "true", known_hosts=str(empty))
    assert r.returncode == 255 and "Host key verification failed" in r.stderr
    assert run(h1, "true").returncode == 0  # the right pin works


def test_private_directories(cluster: Cluster) -> None:
    h1, h2 = cluster.h1, cluster.h2
    name = "probe-" + secrets.token_hex(4)
    dirs = (
        "/usr/local/bin",
        "/usr/local/sbin",
        "/etc/rancher",
        "/var/lib/rancher",
        "/tmp",
        "/var/tmp",
        "/opt",
        "/etc/systemd",
        "/root/.ssh",
        "/var/log/aip",
        "/run/aip",
    )
    run(h1, "; ".join(f"echo {name} > {d}/{name}" for d in dirs), check=True)
    seen_h1 = run(h1, "; ".join(f"cat {d}/{name}" for d in dirs), check=True).stdout.split()
    assert seen_h1 == [name] * len(dirs)
    seen_h2 = run(h2, "; ".join(f"test -e {d}/{name} && echo {d}" for d in dirs) + "; true").stdout.split()
    assert seen_h2 == [], f"shared with h2: {seen_h2}"
    for d in dirs:
        assert not Path(d, name).exists(), f"{d} is shared with the root namespace"
        assert h1.path(f"{d}/{name}").read_text().strip() == name
    run(h1, "; ".join(f"rm {d}/{name}" for d in dirs), check=True)
    assert run(h1, "cat /etc/hostname").stdout.strip() == "h1"
    r = run(h1, "sudo -n cat /home/aiptest/.ssh/authorized_keys", user="aiptest", check=True)
    assert r.stdout.startswith("ssh-ed25519 ")


def test_hosts_reach_each_other(cluster: Cluster) -> None:
    r = run(cluster.h2, "timeout 3 bash -c '</dev/tcp/10.231.0.11/22' && echo open")
    assert r.stdout.strip() == "open", r.stderr
    r = run(cluster.h2, "timeout 3 bash -c '</dev/tcp/10.231.0.11/6443' 2>/dev/null && echo open || echo closed")
    assert r.stdout.strip() == "closed"  # nothing listens on 6443 before K3s is installed


def test_path_and_stand_in_systemctl(cluster: Cluster) -> None:
    h = cluster.h1
    for user in ("root", "aiptest"):
        r = run(h, "echo $PATH; command -v systemctl; sudo -n sh -c 'command -v systemctl'", user=user, check=True)
        path, which, sudo_which = r.stdout.split()
        assert path.startswith("/usr/local/sbin:/usr/local/bin:"), (user, path)
        assert which == sudo_which == "/usr/local/sbin/systemctl"
    r = run(
        h, "sudo systemctl is-active k3s; echo rc=$?; /usr/bin/systemctl is-enabled k3s; echo rc=$?", user="aiptest"
    )
    assert r.stdout.split() == ["inactive", "rc=3", "rc=1"], r.stdout
    assert "COMMAND=/usr/local/sbin/systemctl is-active k3s" in sudo_log(h)


# ------------------------------------------------------------------ stand-in K3s


def test_server_and_agent(cluster: Cluster) -> None:
    h1, h2 = cluster.h1, cluster.h2
    server_cfg = (
        "node-name: h1\ntoken-file: /etc/rancher/k3s/cluster-token\ncluster-init: true\n"
        "write-kubeconfig-mode: '0600'\ndisable:\n- traefik\ntls-san:\n- 10.231.0.11\nunknown-key: 1\n"
        "kube-controller-manager-arg:\n- node-monitor-grace-period=20s\n"
    )
    r = install(h1, "server", cluster.token, server_cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "systemd: Starting k3s" in r.stdout
    assert run(h1, "k3s kubectl get --raw /readyz").stdout == "ok"
    assert ready(h1, "h1") == "True"
    assert run(h1, "k3s --version").stdout.splitlines()[0] == f"k3s version {VERSION} (standin)"

    agent_cfg = (
        f"node-name: h2\ntoken-file: /etc/rancher/k3s/cluster-token\nserver: {SERVER_URL}\nnode-label:\n- pool=a\n"
    )
    r = install(h2, "agent", cluster.token, agent_cfg, user="aiptest")
    assert r.returncode == 0, r.stdout + r.stderr
    assert wait_until(lambda: ready(h1, "h2") == "True"), ready(h1, "h2")
    # the agent writes its marker once it sees its own Node Ready (its poll lags the server's view)
    assert wait_until(lambda: h2.path("/var/lib/rancher/k3s/agent/standin-registered").exists())
    r = kubectl(h1, "get node h2 -o 'jsonpath={.metadata.labels.pool}'")
    assert r.stdout == "a"

    # what install made, like the real installer
    for host, svc, uninstall in ((h1, "k3s", "k3s-uninstall.sh"), (h2, "k3s-agent", "k3s-agent-uninstall.sh")):
        for link in ("kubectl", "crictl", "ctr"):
            assert host.path(f"/usr/local/bin/{link}").is_symlink()
            assert str(host.path(f"/usr/local/bin/{link}").readlink()) == "k3s"
        for f in ("k3s-killall.sh", uninstall):
            assert host.path(f"/usr/local/bin/{f}").stat().st_mode & 0o111
        assert host.path(f"/etc/systemd/system/{svc}.service").exists()
        assert host.path(f"/etc/systemd/system/{svc}.service.env").stat().st_mode & 0o777 == 0o600
        assert count_events(host, "install", svc) == 1
        assert count_events(host, "restart", svc) == 1
    kubeconfig = h1.path("/etc/rancher/k3s/k3s.yaml")
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    text = kubeconfig.read_text()
    assert "server: https://127.0.0.1:6443" in text and "current-context: default" in text
    assert h1.path("/var/lib/rancher/k3s/server/node-token").is_symlink()  # -> token, like K3s
    node_token = run(h1, "cat /var/lib/rancher/k3s/server/node-token", check=True).stdout.strip()
    assert re.fullmatch(r"K10[0-9a-f]{64}::server:" + re.escape(cluster.token), node_token)

    # kubectl needs a server's kubeconfig: on an agent it fails like the real one
    r = kubectl(h2, "get nodes")
    assert r.returncode == 1 and "localhost:8080 was refused" in r.stderr
    r = kubectl(h1, "get node nosuch")
    assert r.returncode == 1 and r.stderr.strip() == 'Error from server (NotFound): nodes "nosuch" not found'

    # the same install again: no restart (the installer sees no change), one more install event
    r = install(h2, "agent", cluster.token, agent_cfg, user="aiptest")
    assert r.returncode == 0 and "No change detected so skipping service start" in r.stdout, r.stdout
    assert count_events(h2, "install", "k3s-agent") == 2
    assert count_events(h2, "restart", "k3s-agent") == 1

    # the token went through stdin and files only
    for h in (h1, h2):
        assert process_cmdlines(h), "the capture recorded nothing"
        assert secret_exposures(h, cluster.token) == []


def test_wrong_token_never_ready(cluster: Cluster) -> None:
    h1, h3 = cluster.h1, cluster.h3
    cfg = f"token-file: /etc/rancher/k3s/cluster-token\nserver: {SERVER_URL}\n"
    r = install(h3, "agent", "not-the-token", cfg)
    assert r.returncode == 0, r.stderr  # Type=exec: the installer does not wait for the agent
    assert wait_until(lambda: run(h3, "systemctl is-active k3s-agent").stdout.strip() == "failed")
    for _ in range(4):
        assert ready(h1, "h3") == 'error: Error from server (NotFound): nodes "h3" not found'
        time.sleep(0.5)
    assert "token rejected" in h3.path("/var/log/aip/k3s-agent.log").read_text()
    assert count_events(h3, "failed", "k3s-agent") == 1
    assert not h3.path("/var/lib/rancher/k3s/agent/standin-registered").exists()
    run(h3, "/usr/local/bin/k3s-agent-uninstall.sh", check=True)


def test_joining_server(cluster: Cluster) -> None:
    h1, h3 = cluster.h1, cluster.h3
    before = members(h1)
    assert [m.rsplit("-", 1)[0] for m in before] == ["h1"]
    cfg = f"node-name: h3\ntoken-file: /etc/rancher/k3s/cluster-token\nserver: {SERVER_URL}\n"
    r = install(h3, "server", cluster.token, cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ready(h1, "h3") == "True"
    roles = kubectl(h1, "get node h3 -o 'jsonpath={.metadata.labels.node-role\\.kubernetes\\.io/etcd}'")
    assert roles.stdout == "true"
    # a real etcd member each, seen alike from both servers
    joined = members(h1)
    assert sorted(m.rsplit("-", 1)[0] for m in joined) == ["h1", "h3"] and members(h3) == joined
    # the joining server answers kubectl itself (for the whole cluster)
    r = kubectl(h3, "get nodes --no-headers")
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["h1", "h2", "h3"], r.stdout + r.stderr
    # leaving cleanly: its Node deleted first (that removes its etcd member), then uninstalled
    assert kubectl(h1, "delete node h3").returncode == 0
    assert members(h1) == before
    run(h3, "/usr/local/bin/k3s-uninstall.sh", check=True)
    assert run(h1, "k3s kubectl get --raw /readyz").stdout == "ok", "one member left, and it has quorum"


def test_stopped_agent_turns_not_ready_then_ready_again(cluster: Cluster) -> None:
    """The real node-lifecycle controller: no lease renewal from h2's kubelet (kwok, stopped with
    the agent) for node-monitor-grace-period (20 s here) → Ready Unknown; started → True."""
    h1, h2 = cluster.h1, cluster.h2
    assert ready(h1, "h2") == "True"
    run(h2, "sudo systemctl stop k3s-agent", user="aiptest", check=True)
    assert wait_until(lambda: ready(h1, "h2") == "Unknown", timeout=120, interval=1), ready(h1, "h2")
    r = kubectl(h1, "get node h2 -o 'jsonpath={.spec.taints[*].key}'")
    assert "node.kubernetes.io/unreachable" in r.stdout.split()
    run(h2, "sudo systemctl start k3s-agent", user="aiptest", check=True)
    assert wait_until(lambda: ready(h1, "h2") == "True", timeout=60), ready(h1, "h2")


def test_drain_cordon_label_delete(cluster: Cluster) -> None:
    h1, _h2 = cluster.h1, cluster.h2
    r = kubectl(h1, "label node h2 pool=b")
    assert r.returncode == 1 and "--overwrite is false" in r.stderr
    assert kubectl(h1, "label node h2 pool=b --overwrite").stdout.strip() == "node/h2 labeled"
    r = kubectl(h1, "drain h2 --ignore-daemonsets --delete-emptydir-data --force --timeout=30s")
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "node/h2 drained", r.stdout + r.stderr
    assert kubectl(h1, "get node h2 -o 'jsonpath={.spec.unschedulable}'").stdout == "true"
    assert "Ready,SchedulingDisabled" in kubectl(h1, "get nodes").stdout
    assert count_events(h1, "drain", "h2") == 1
    assert kubectl(h1, "uncordon h2").stdout.strip() == "node/h2 uncordoned"
    assert kubectl(h1, "delete node h2").stdout.strip() == 'node "h2" deleted'
    assert ready(h1, "h2").startswith("error: Error from server (NotFound)")
    assert kubectl(h1, "delete node h2 --ignore-not-found").returncode == 0
    assert count_events(h1, "delete-node", "h2") == 1
    # a deleted node stays deleted while its agent runs (the kubelet does not re-register)
    time.sleep(2.5)
    assert ready(h1, "h2").startswith("error:")


def test_uninstall_removes_everything(cluster: Cluster) -> None:
    h1, h2 = cluster.h1, cluster.h2
    r = run(h2, "sudo /usr/local/bin/k3s-agent-uninstall.sh", user="aiptest")
    assert r.returncode == 0, r.stderr
    r = run(h1, "/usr/local/bin/k3s-uninstall.sh")
    assert r.returncode == 0, r.stderr
    for h, svc in ((h1, "k3s"), (h2, "k3s-agent")):
        assert sorted(p.name for p in h.path("/usr/local/bin").iterdir()) == []
        assert not h.path("/etc/rancher/k3s").exists()
        assert not h.path("/var/lib/rancher/k3s").exists()
        assert not list(h.path("/etc/systemd/system").rglob("k3s*"))
        assert count_events(h, "uninstall", svc) == 1
        assert count_events(h, "stop", svc) >= 1
        assert not [c for c in netns_cmdlines(h) if "k3s" in c], netns_cmdlines(h)
        assert run(h, f"systemctl is-active {svc}").stdout.strip() == "inactive"
    assert run(h1, "timeout 3 bash -c '</dev/tcp/127.0.0.1/6443' 2>/dev/null || echo closed").stdout.strip() == "closed"


def test_capture_sees_secrets_on_command_lines(cluster: Cluster) -> None:
    """The check can fail: a canary put on a command line is found (as root and through sudo)."""
    h = cluster.h3
    canary = "canary-" + secrets.token_hex(8)
    run(h, f"sh -c 'sleep 0.2' {canary}-a", check=True)
    run(h, f"sudo -n /bin/true {canary}-b", user="aiptest", check=True)
    hits = secret_exposures(h, canary)
    assert any(f"{canary}-a" in hit and hit.startswith("cmdline") for hit in hits), hits
    assert any(f"{canary}-b" in hit and hit.startswith("sudo.log") for hit in hits), hits


# ------------------------------------------------------------------ last: down


def test_down_leaves_nothing(cluster: Cluster) -> None:
    th = cluster.th
    state = th.state_dir
    th.down()
    th.down()  # safe twice
    assert "aip-h" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "aip-br0" not in links and not re.search(r"\baipv\d+", links)
    assert state not in Path("/proc/self/mounts").read_text()
    assert not Path(state).exists()
    assert not Path("/etc/sudoers.d/aiptest").exists()
    leftovers = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "__hostinit" in cmd or f"--state {state}" in cmd or "/run/aip-host/sshd_config" in cmd:
                leftovers.append(cmd)
    assert leftovers == []
    with pytest.raises(RuntimeError, match="test hosts are down"):
        run(cluster.h1, "true")
