"""The K3s node scripts over real SSH, with the exact commands the plan declares.

The plan comes from the real program under the mock runtime; tests/hosts/driver.py (a
stand-in for the engine, nothing more) runs its `command:remote:*` resources over SSH against
the test hosts, which run the stand-in K3s bundle (tests/standin, NOT K3s): the real etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and kubectl, kwok as each node's
kubelet. SSH as the non-root `aiptest` (passwordless `sudo -n`), airgap install.

Hosts: h1 is the first server, h2 and h3 agents; h4 and h5 are the servers added when the
cluster grows to three servers. The lifecycle tests are one sequence (install, re-run, forced
re-run, registries change, agent removal with pods on it, growth, version upgrade, server
removal, growth again, destroy); each reaches the stages before it if it runs alone. The
host-key and fault tests bring up fresh hosts (down + up, ~2 s).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import kubeconfig as kc
from stacks.plan import split_command
from tests.hosts.conftest import REGISTRY, VERSION, bundle, stack_config
from tests.hosts.driver import COMMAND, COPY, Connection, Driver, DriverError, HostKeyMismatch, Result, Ssh
from tests.hosts.kube import Kube, Probe, pods, ready_pods, wait_for
from tests.hosts.testhosts import (
    Event,
    Host,
    TestHosts,
    events,
    host_processes,
    process_cmdlines,
    run,
    secret_exposures,
    ssh_sessions,
    start_sshd,
    stop_sshd,
    unsupported_reason,
)
from tests.standin.make_bundle import IMAGES_NAME

_REASON = unsupported_reason()
pytestmark = [pytest.mark.hosts, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]

DELAY = 0.0  # no extra start-up delay: the real control plane takes its own time
UPGRADE = "v1.30.4+k3s2"  # the in-place version change (a stand-in build of the same Kubernetes)
TIMEOUT = 120  # per SSH command: a hung session fails the test instead of hanging it
BUNDLE_DIR = "/var/tmp/ai-platform/k3s-airgap"
MIRROR_A = "https://mirror-a.test.internal"
MIRROR_B = "https://mirror-b.test.internal"
READY = '\'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}\''
# files the node scripts and the installer write (mtimes compared across re-runs)
NODE_FILES = (
    "/etc/rancher/k3s/config.yaml",
    "/etc/rancher/k3s/cluster-token",
    "/etc/rancher/k3s/registries.yaml",
    "/usr/local/bin/k3s",
    f"/var/lib/rancher/k3s/agent/images/{IMAGES_NAME}",
    "/etc/systemd/system/k3s.service",
    "/etc/systemd/system/k3s.service.env",
    "/etc/systemd/system/k3s-agent.service",
    "/etc/systemd/system/k3s-agent.service.env",
    f"{BUNDLE_DIR}/k3s",
    f"{BUNDLE_DIR}/install.sh",
    f"{BUNDLE_DIR}/{IMAGES_NAME}",
)


# ------------------------------------------------------------------ environment


class Env:
    """Module-wide: the test hosts, the bundle, the secrets, a work directory."""

    def __init__(self, th: TestHosts, hosts: list[Host], work: Path):
        self.th = th
        self.hosts = hosts
        self.work = work
        self.bundle_dir = work / "bundle"
        self.bundle = bundle(self.bundle_dir, DELAY)
        self.upgrade_dir = work / "bundle-upgrade"
        self.upgrade_bundle = bundle(self.upgrade_dir, DELAY, UPGRADE)
        self.token = "tok-" + secrets.token_hex(16)
        self.registry_password = "regpw-" + secrets.token_hex(12)
        self.lifecycle: Lifecycle | None = None
        self._states = 0

    def h(self, i: int) -> Host:
        return self.hosts[i - 1]

    def fresh(self) -> None:
        """New hosts: down + up (new host keys, empty state dirs)."""
        self.close()
        self.th.down()
        self.hosts = self.th.up()

    def close(self) -> None:
        if self.lifecycle is not None:
            self.lifecycle.driver.close()
            self.lifecycle = None

    def state_file(self) -> Path:
        self._states += 1
        return self.work / f"state-{self._states}.json"

    def config(self, servers: list[int], agents: list[int], upgraded: bool = False, **kw: Any) -> dict[str, Any]:
        """The lifecycle's stack: the bundle as one directory until the upgrade, which also moves to
        the three-file form (both forms put the same files in the same place on the nodes)."""
        kw.setdefault("airgap_files", upgraded)
        return stack_config(
            [self.h(i) for i in servers],
            [self.h(i) for i in agents],
            bundle_dir=self.upgrade_dir if upgraded else self.bundle_dir,
            version=UPGRADE if upgraded else VERSION,
            token=self.token,
            registry_password=self.registry_password,
            **kw,
        )

    def kube(self, result: Result) -> Kube:
        """The API from the provisioner's side, with the kubeconfig the program read back and rewrote."""
        assert result.kubeconfig and result.plan is not None
        api = result.plan.recording.outputs["apiServer"]
        return Kube(kc.rewrite(result.kubeconfig, api, "ai-platform-hosts"))

    def private_key_lines(self) -> list[str]:
        text = Path(self.hosts[0].client_key_path).read_text()
        return [ln for ln in text.splitlines() if ln and not ln.startswith("-----")]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    th = TestHosts(5)
    hosts = th.up()
    env = None
    try:
        env = Env(th, hosts, tmp_path_factory.mktemp("k3s-over-ssh"))
        yield env
    finally:
        if env is not None:
            env.close()
        th.down()


# ------------------------------------------------------------------ helpers


def nodes_ready(server: Host) -> dict[str, str]:
    r = run(server, f"k3s kubectl get nodes -o {READY}")
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.split())


def all_ready(server: Host, names: list[str]) -> bool:
    got = nodes_ready(server)
    return sorted(got) == sorted(names) and all(v == "True" for v in got.values())


def since(host: Host, t0: float) -> list[Event]:
    return [e for e in events(host) if e.t >= t0]


def names(evs: list[Event], *kinds: str) -> list[tuple[str, str]]:
    return [(e.event, e.target) for e in evs if not kinds or e.event in kinds]


def mtimes(host: Host) -> dict[str, int]:
    out = {}
    for f in NODE_FILES:
        p = host.path(f)
        if p.exists():
            out[f] = p.stat().st_mtime_ns
    return out


def install_config(result_or_plan: Any, node: str) -> str:
    """config.yaml as the plan's install command carries it (the `config=` argument)."""
    plan = result_or_plan.plan if isinstance(result_or_plan, Result) else result_or_plan
    _, _, args, sudo = split_command(plan.by_name(f"k3s-{node}-install").inputs["create"])
    assert sudo, "aiptest runs the scripts through sudo -n"
    return base64.b64decode(args["config"]).decode()


def stat(host: Host, path: str) -> os.stat_result:
    return host.path(path).stat()


def clean(host: Host) -> list[str]:
    """What K3s or the plan left on HOST (empty: clean). /etc/rancher/node stays, as with K3s."""
    left = []
    for path in (
        "/etc/rancher/k3s",
        "/var/lib/rancher/k3s",
        "/usr/local/bin/k3s",
        "/usr/local/bin/kubectl",
        "/usr/local/bin/crictl",
        "/usr/local/bin/ctr",
        "/usr/local/bin/k3s-killall.sh",
        "/usr/local/bin/k3s-uninstall.sh",
        "/usr/local/bin/k3s-agent-uninstall.sh",
        "/etc/systemd/system/k3s.service",
        "/etc/systemd/system/k3s-agent.service",
        "/etc/systemd/system/multi-user.target.wants/k3s.service",
        "/etc/systemd/system/multi-user.target.wants/k3s-agent.service",
        "/var/tmp/ai-platform",
    ):
        if os.path.lexists(host.path(path)):
            left.append(path)
    for _, argv in host_processes(host).values():
        if argv and ("k3s" in " ".join(argv[:2]) or argv[0].startswith("/run/aip-tools/")):
            left.append("process: " + " ".join(argv[:3]))
    return left


ETCDCTL = (
    "/run/aip-tools/etcd-v3.5.12/etcdctl --endpoints=https://127.0.0.1:2379"
    " --cacert=/var/lib/rancher/k3s/server/tls/etcd/server-ca.crt"
    " --cert=/var/lib/rancher/k3s/server/tls/etcd/client.crt --key=/var/lib/rancher/k3s/server/tls/etcd/client.key"
)


def etcd_members(server: Host) -> dict[str, dict[str, Any]]:
    """The real etcd membership, asked on SERVER: member name → member (ID, peerURLs, isLearner)."""
    r = run(server, f"{ETCDCTL} member list -w json", check=True)
    return {m["name"]: m for m in json.loads(r.stdout)["members"]}


def etcd_healthy(server: Host) -> list[str]:
    """`etcdctl endpoint health --cluster` on SERVER: the endpoints that report healthy."""
    r = run(server, f"{ETCDCTL} endpoint health --cluster 2>&1")
    return sorted(line.split()[0] for line in r.stdout.splitlines() if " is healthy" in line)


def member_node(name: str) -> str:
    """K3s names a server's etcd member <node>-<8 hex>."""
    return name.rsplit("-", 1)[0]


APP = "drain-probe"


def workload(replicas: int, min_available: int) -> list[dict[str, Any]]:
    """A Deployment (pods under kwok on the nodes) and the PodDisruptionBudget drain must respect."""
    labels = {"app": APP}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": APP, "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "registry.test.internal/app:1"}]},
                },
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": APP, "namespace": "default"},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": labels}},
        },
    ]


class ReadyWatch:
    """Samples, while a step runs, how many of the workload's pods are Ready (the fewest seen)."""

    def __init__(self, kube: Kube, server: str):
        self.kube, self.server = kube, server
        self.fewest: int | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = self.kube.get(self.server, f"/api/v1/namespaces/default/pods?labelSelector=app%3D{APP}")
            except OSError:
                status = 0
            if status == 200:
                n = len(ready_pods(json.loads(body)["items"]))
                self.fewest = n if self.fewest is None else min(self.fewest, n)
                self.samples += 1
            self._stop.wait(0.2)

    def __enter__(self) -> ReadyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------ the lifecycle


@dataclass
class Stage:
    result: Result
    t0: float
    data: dict[str, Any] = field(default_factory=dict)


class Lifecycle:
    """One cluster through its stages; `reach(stage)` runs the missing earlier ones."""

    ORDER = (
        "installed",
        "rerun",
        "forced",
        "registries",
        "agent-removed",
        "grown",
        "upgraded",
        "server-removed",
        "regrown",
        "destroyed",
    )

    def __init__(self, env: Env):
        self.env = env
        self.driver = Driver(env.state_file(), command_timeout=TIMEOUT)
        self.stages: dict[str, Stage] = {}
        self.config = env.config([1], [2, 3])

    def reach(self, stage: str) -> Stage:
        for name in self.ORDER[: self.ORDER.index(stage) + 1]:
            if name not in self.stages:
                t0 = time.time()
                data: dict[str, Any] = {}
                result = getattr(self, "_" + name.replace("-", "_"))(data)
                self.stages[name] = Stage(result, t0, data)
        return self.stages[stage]

    def _snapshot(self, data: dict[str, Any], key: str) -> None:
        data[key] = {
            h.name: {"mtimes": mtimes(h), "events": events(h), "sessions": ssh_sessions(h)} for h in self.env.hosts
        }

    def _installed(self, data: dict[str, Any]) -> Result:
        return self.driver.up(self.config)

    def _rerun(self, data: dict[str, Any]) -> Result:
        self._snapshot(data, "before")
        result = self.driver.up(self.config)
        self._snapshot(data, "after")
        return result

    def _forced(self, data: dict[str, Any]) -> Result:
        self._snapshot(data, "before")
        result = self.driver.up(self.config, force_update=True)
        self._snapshot(data, "after")
        return result

    def _registries(self, data: dict[str, Any]) -> Result:
        self.config = self.env.config([1], [2, 3], mirror=MIRROR_B)
        result = self.driver.up(self.config)
        # no waiting here: each node's command returns once its K3s is back
        t0 = min(a.started for a in result.actions)
        data["restarts"] = {
            h.name: [e.t for e in since(h, t0) if e.event == "restart"] for h in (self.env.h(i) for i in (1, 2, 3))
        }
        data["ready"] = {
            h.name: [e.t for e in since(h, t0) if e.event == "ready"] for h in (self.env.h(i) for i in (1, 2, 3))
        }
        return result

    def kube(self) -> Kube:
        last = self.stages[self.ORDER[max(self.ORDER.index(n) for n in self.stages)]]
        return self.env.kube(last.result)

    def _agent_removed(self, data: dict[str, Any]) -> Result:
        # real pods on h2: while h1 and h3 are cordoned the scheduler can only put them there
        kube = self.kube()
        kube.kubectl("cordon", "h1", "h3")
        kube.apply(workload(replicas=4, min_available=3))
        wait_for("4 Ready pods on h2", lambda: len(ready_pods(pods(kube, f"app={APP}"))) == 4)
        kube.kubectl("uncordon", "h1", "h3")
        before = pods(kube, f"app={APP}")
        data["pods before"] = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in before}
        self._snapshot(data, "before")
        self.config = self.env.config([1], [3], mirror=MIRROR_B)
        with ReadyWatch(kube, kube.server) as watch:
            result = self.driver.up(self.config)
        data["fewest ready"], data["samples"] = watch.fewest, watch.samples
        self._snapshot(data, "after")
        return result

    def _grown(self, data: dict[str, Any]) -> Result:
        kube = self.kube()
        kube.kubectl("delete", "deployment,pdb", APP, "--ignore-not-found")  # nothing to protect from here on
        data["members before"] = etcd_members(self.env.h(1))
        self.config = self.env.config([1, 4, 5], [3], mirror=MIRROR_B)
        return self.driver.up(self.config)

    def _upgraded(self, data: dict[str, Any]) -> Result:
        kube = self.kube()
        servers = [f"https://{self.env.h(i).address}:6443" for i in (1, 4, 5)]
        self.config = self.env.config([1, 4, 5], [3], upgraded=True, mirror=MIRROR_B)
        with Probe(kube, servers) as probe:
            result = self.driver.up(self.config)
            # until every server answers again after the last restart (the agents' restarts are last)
            wait_for("every API server answering", lambda: probe.rounds and len(probe.rounds[-1][1]) == 3)
        data["probe"] = probe
        return result

    def _server_removed(self, data: dict[str, Any]) -> Result:
        data["members before"] = etcd_members(self.env.h(1))
        self._snapshot(data, "before")
        # 3 → 1 (the config refuses an even number of servers)
        self.config = self.env.config([1], [3], upgraded=True, mirror=MIRROR_B)
        result = self.driver.up(self.config)
        self._snapshot(data, "after")
        return result

    def _regrown(self, data: dict[str, Any]) -> Result:
        self.config = self.env.config([1, 4, 5], [3], upgraded=True, mirror=MIRROR_B)
        return self.driver.up(self.config)

    def _destroyed(self, data: dict[str, Any]) -> Result:
        return self.driver.destroy()


@pytest.fixture
def life(env: Env) -> Lifecycle:
    if env.lifecycle is None:
        env.lifecycle = Lifecycle(env)
    return env.lifecycle


def test_install_one_server_two_agents(env: Env, life: Lifecycle) -> None:
    st = life.reach("installed")
    result = st.result
    h1, h2, h3 = env.h(1), env.h(2), env.h(3)
    plan = result.plan
    assert plan is not None
    # every remote resource of the plan ran once, as a create, and nothing else ran
    assert sorted(a.name for a in result.actions) == sorted(r.name for r in plan.resources.values())
    assert {a.op for a in result.actions} == {"create"}
    # one SSH session each, except the registries commands: the install wrote registries.yaml
    # and no platform layer adds entries, so creating them runs nothing
    sessions = {a.name: a.sessions for a in result.actions}
    assert sessions == {n: 0 if n.endswith("-registries") else 1 for n in sessions}
    # the bundle directory is one upload per node (one SFTP session), the install one command
    copies = sorted(a.name for a in result.actions if a.type == COPY)
    assert copies == [f"k3s-{h}-upload-bundle" for h in ("h1", "h2", "h3")]
    assert "pulumi:providers:kubernetes::k3s-provider" in plan.not_created

    for h, role in ((h1, "server"), (h2, "agent"), (h3, "agent")):
        cfg_path = "/etc/rancher/k3s/config.yaml"
        assert stat(h, cfg_path).st_mode & 0o777 == 0o600 and stat(h, cfg_path).st_uid == 0
        text = h.path(cfg_path).read_text()
        assert text == install_config(result, h.name), "config.yaml is the one the plan carries"
        cfg = yaml.safe_load(text)
        assert cfg["node-name"] == h.name
        assert cfg["token-file"] == "/etc/rancher/k3s/cluster-token"
        if role == "agent":
            assert cfg["server"] == f"https://{h1.address}:6443"
        else:
            assert "server" not in cfg and "cluster-init" not in cfg
        tok = "/etc/rancher/k3s/cluster-token"
        assert stat(h, tok).st_mode & 0o777 == 0o600 and h.path(tok).read_text() == env.token
        reg = "/etc/rancher/k3s/registries.yaml"
        assert stat(h, reg).st_mode & 0o777 == 0o600
        regs = yaml.safe_load(h.path(reg).read_text())
        assert regs["mirrors"]["docker.io"]["endpoint"] == [MIRROR_A]
        assert regs["configs"][REGISTRY]["auth"] == {"username": "pull", "password": env.registry_password}
        assert stat(h, "/usr/local/bin/k3s").st_mode & 0o777 == 0o755
        assert h.path("/usr/local/bin/k3s").read_bytes() == env.bundle["k3s"].read_bytes()
        assert h.path(f"/var/lib/rancher/k3s/agent/images/{IMAGES_NAME}").read_bytes() == (
            env.bundle[IMAGES_NAME].read_bytes()
        )
        for name in ("k3s", "install.sh", IMAGES_NAME):  # the uploads, as the SSH user
            up = h.path(f"{BUNDLE_DIR}/{name}")
            assert up.read_bytes() == env.bundle[name].read_bytes() and up.stat().st_uid != 0
        unit = "k3s" if role == "server" else "k3s-agent"
        assert h.path(f"/etc/systemd/system/{unit}.service").is_file()
        assert run(h, f"systemctl is-active {unit}").stdout.strip() == "active"
        assert names(events(h), "install") == [("install", unit)]
    assert all_ready(h1, ["h1", "h2", "h3"])

    # the kubeconfig read back parses and points at the first server
    assert result.kubeconfig and "127.0.0.1" in result.kubeconfig
    api = plan.recording.outputs["apiServer"]
    assert api == f"https://{h1.address}:6443"
    doc = yaml.safe_load(kc.rewrite(result.kubeconfig, api, "ai-platform-hosts"))
    assert doc["clusters"][0]["cluster"]["server"] == api
    assert doc["current-context"] == "ai-platform-hosts"
    # ... and works from another machine (h2's k3s kubectl is the real kubectl)
    kube_file = env.work / "kubeconfig"
    kube_file.write_text(kc.rewrite(result.kubeconfig, api, "ai-platform-hosts"))
    run(h2, "cat > /tmp/kubeconfig", input=kube_file.read_text(), check=True)
    r = run(h2, "k3s kubectl --kubeconfig /tmp/kubeconfig get nodes -o name", check=True)
    assert sorted(r.stdout.split()) == ["node/h1", "node/h2", "node/h3"]
    run(h2, "rm -f /tmp/kubeconfig", check=True)

    # ... and from the provisioner (the root namespace): the real API server, the admin client
    # certificate K3s' kubeconfig carries, verified against the cluster CA
    kube = env.kube(result)
    assert kube.server == api
    version = kube.json("version")["serverVersion"]
    assert version["gitVersion"] == "v1.30.4", "the Kubernetes of the pinned K3s"
    assert kube.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == "system:admin"
    nodes = {n["metadata"]["name"]: n for n in kube.json("get", "nodes")["items"]}
    assert sorted(nodes) == ["h1", "h2", "h3"]
    for name, n in nodes.items():
        h = env.h(int(name[1:]))
        conds = {c["type"]: c for c in n["status"]["conditions"]}
        assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
        assert n["status"]["nodeInfo"]["kubeletVersion"] == VERSION
        assert {"type": "InternalIP", "address": h.address} in n["status"]["addresses"]
        assert n["spec"]["podCIDR"].startswith("10.42."), "kube-controller-manager allocated the pod range"
        lease = kube.json("get", "lease", "-n", "kube-node-lease", name)
        assert lease["spec"]["holderIdentity"].startswith(name), "the simulated kubelet renews its lease"
        roles = {k for k in n["metadata"]["labels"] if k.startswith("node-role.kubernetes.io/")}
        server_roles = {"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}
        assert roles == (server_roles if name == "h1" else set()), f"{name}: {roles}"
    # what a fresh K3s deploys and the platform patches: CoreDNS importing coredns-custom, the
    # default local-path class and its provisioner; no traefik (disabled)
    corefile = kube.json("get", "configmap", "-n", "kube-system", "coredns")["data"]["Corefile"]
    assert "import /etc/coredns/custom/*.server" in corefile
    coredns = kube.json("get", "deployment", "-n", "kube-system", "coredns")
    volumes = {v["name"]: v for v in coredns["spec"]["template"]["spec"]["volumes"]}
    assert volumes["custom-config-volume"]["configMap"] == {
        "name": "coredns-custom",
        "optional": True,
        "defaultMode": 420,
    }
    sc = kube.json("get", "storageclass", "local-path")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    for deploy in ("coredns", "local-path-provisioner"):
        wait_for(
            f"{deploy} available",
            lambda d=deploy: (
                kube.json("get", "deployment", "-n", "kube-system", d)["status"].get("availableReplicas") == 1
            ),
        )
    assert (
        kube.kubectl("get", "deployment,service", "-A", "-l", "app.kubernetes.io/name=traefik", "-o", "name").stdout
        == ""
    )


def test_no_secret_on_any_command_line_nor_in_the_plan(env: Env, life: Lifecycle) -> None:
    st = life.reach("installed")
    key_lines = env.private_key_lines()
    plain = [env.token, env.registry_password, *key_lines]
    encoded = [base64.b64encode(s.encode()).decode() for s in (env.token, env.registry_password)]
    for h in (env.h(1), env.h(2), env.h(3)):
        seen = [r.cmdline for r in process_cmdlines(h)]
        # the capture saw the node scripts themselves (else this test proves nothing)
        assert any("k3s-install.sh" in c for c in seen), f"{h.name}: no node script captured"
        assert any("sudo -n bash -c" in c for c in seen)
        for s in plain + encoded:
            assert secret_exposures(h, s) == [], f"{h.name}: a secret on a command line"
    plan = st.result.plan
    assert plan is not None
    public = json.dumps([d.inputs for d in plan.recording.declared])
    for d in plan.recording.by_type(COMMAND):  # the base64 arguments, decoded
        for text in (d.inputs.get("create"), d.inputs.get("delete")):
            if isinstance(text, str):
                public += "".join(base64.b64decode(v).decode(errors="replace") for v in _b64_args(text))
    for s in plain + encoded:
        assert s not in public, "a secret in the plan's non-secret inputs"
    for d in plan.recording.by_type(COMMAND):
        assert d.inputs["connection"] == "[secret]"
        if "stdin" in d.inputs:
            assert d.inputs["stdin"] == "[secret]"


def _b64_args(command: str) -> list[str]:
    _, _, args, _ = split_command(command)
    return [v for k, v in args.items() if k == "config"]


def test_same_plan_again_runs_nothing(env: Env, life: Lifecycle) -> None:
    st = life.reach("rerun")
    assert st.result.actions == []
    for h in (env.h(1), env.h(2), env.h(3)):
        assert st.data["after"][h.name] == st.data["before"][h.name], f"{h.name} touched"


def test_forced_rerun_rewrites_nothing_restarts_nothing(env: Env, life: Lifecycle) -> None:
    st = life.reach("forced")
    plan = st.result.plan
    assert plan is not None
    commands = sorted(r.name for r in plan.resources.values() if r.type == COMMAND)
    assert st.result.ran(op="update", type=COMMAND) == commands, "every create ran again"
    assert st.result.ran(type=COPY) == [], "an unchanged upload is not copied again (pulumi-command)"
    for h in (env.h(1), env.h(2), env.h(3)):
        before, after = st.data["before"][h.name], st.data["after"][h.name]
        assert len(before["mtimes"]) >= 8
        assert after["mtimes"] == before["mtimes"], f"{h.name}: a file was rewritten"
        assert after["events"] == before["events"], f"{h.name}: {names(after['events'][len(before['events']) :])}"
    outputs = st.result.outputs
    for node in ("h1", "h2", "h3"):
        assert "unchanged" in outputs[f"k3s-{node}-install"]["stdout"]
        assert "unchanged" in outputs[f"k3s-{node}-registries"]["stdout"]


def test_registries_change_restarts_node_after_node_and_nothing_else(env: Env, life: Lifecycle) -> None:
    st = life.reach("registries")
    result = st.result
    rollout = ["h1", "h2", "h3"]
    # what ran: the rollout, and the installs (their stdin carries the first registries.yaml;
    # they find nothing to do)
    assert result.ops() == {
        **{f"k3s-{n}-install": "update" for n in rollout},
        **{f"k3s-{n}-registries": "update" for n in rollout},
    }
    for n in rollout:
        assert "unchanged" in result.outputs[f"k3s-{n}-install"]["stdout"]
    by_name = {a.name: a for a in result.actions}
    restarts = {n: ts[0] for n, ts in st.data["restarts"].items() if ts}
    for n in rollout:
        h = env.h(int(n[1:]))
        evs = since(h, st.t0)
        unit = "k3s" if n == "h1" else "k3s-agent"
        assert names(evs, "install", "uninstall", "start", "stop") == [], f"{n}: {names(evs)}"
        assert names(evs, "restart") == [("restart", unit)], f"{n}: one restart"
        regs = yaml.safe_load(h.path("/etc/rancher/k3s/registries.yaml").read_text())
        assert regs["mirrors"]["docker.io"]["endpoint"] == [MIRROR_B]
    # node after node: each restart begins after the previous node's command has finished
    for prev, nxt in itertools.pairwise(rollout):
        done = by_name[f"k3s-{prev}-registries"].started + by_name[f"k3s-{prev}-registries"].seconds
        assert by_name[f"k3s-{nxt}-registries"].started >= done
        assert restarts[prev] < restarts[nxt]
    # the server's restart completes (ready again) before the next node restarts
    h1_ready = st.data["ready"]["h1"]
    assert h1_ready and restarts["h1"] < h1_ready[0] < restarts["h2"]


def test_registries_rollout_waits_for_each_agent_to_be_back(env: Env, life: Lifecycle) -> None:
    """An agent's unit is Type=exec (`systemctl restart` returns at once): its command must wait
    for the kubelet's /healthz, so the next node restarts only once this agent is back."""
    st = life.reach("registries")
    by_name = {a.name: a for a in st.result.actions}
    (h2_restart,), (h3_restart,) = st.data["restarts"]["h2"], st.data["restarts"]["h3"]
    h2_back = [t for t in st.data["ready"]["h2"] if t > h2_restart]
    h3_back = [t for t in st.data["ready"]["h3"] if t > h3_restart]
    assert h2_back, "h2's agent was not back when the run finished"
    assert h2_back[0] < h3_restart, f"h3 restarted {h2_back[0] - h3_restart:.2f}s before h2's agent was back"
    h3_done = by_name["k3s-h3-registries"].started + by_name["k3s-h3-registries"].seconds
    assert h3_back and h3_back[0] <= h3_done, "h3's command returned before its agent was back"


def test_removing_an_agent_drains_deletes_uninstalls_it_and_touches_no_other_host(env: Env, life: Lifecycle) -> None:
    st = life.reach("agent-removed")
    result = st.result
    h1, h2 = env.h(1), env.h(2)
    assert result.ops() == {"k3s-h2-ready": "delete", "k3s-h2-install": "delete"}
    deleted = sorted(a.name for a in result.actions)
    assert deleted == sorted(["k3s-h2-ready", "k3s-h2-install", "k3s-h2-registries", "k3s-h2-upload-bundle"])
    ready_del = next(a for a in result.actions if a.name == "k3s-h2-ready")
    install_del = next(a for a in result.actions if a.name == "k3s-h2-install")
    assert ready_del.where.split("@")[1].startswith(h1.address), "drain + delete Node run on the first server"
    assert ready_del.started + ready_del.seconds <= install_del.started, "drained before uninstalled"
    # on the first server: drain and delete of h2's Node, nothing else
    h1_new = st.data["after"]["h1"]["events"][len(st.data["before"]["h1"]["events"]) :]
    assert [(e.event, e.target) for e in h1_new if e.event != "cordon"] == [("drain", "h2"), ("delete-node", "h2")]
    assert st.data["after"]["h1"]["mtimes"] == st.data["before"]["h1"]["mtimes"]
    # h2: uninstalled, clean
    h2_new = names(st.data["after"]["h2"]["events"][len(st.data["before"]["h2"]["events"]) :])
    assert ("uninstall", "k3s-agent") in h2_new and ("install", "k3s-agent") not in h2_new
    assert clean(h2) == []
    # h3: not touched at all (no session, no event, no file)
    assert st.data["after"]["h3"] == st.data["before"]["h3"]
    for h in (env.h(4), env.h(5)):
        assert st.data["after"][h.name] == st.data["before"][h.name]
    assert all_ready(h1, ["h1", "h3"])
    assert not any(k.startswith("command:remote:Command::k3s-h2-") for k in life.driver.state.resources)


def test_removing_an_agent_evicts_its_pods_within_their_budget_and_they_run_elsewhere(
    env: Env, life: Lifecycle
) -> None:
    """h2 had all 4 replicas of a Deployment (PodDisruptionBudget minAvailable 3): the drain
    evicted them through the Eviction API, never below the budget, and the ReplicaSet's new pods
    were scheduled on the other nodes by the real scheduler (kwok runs them) before h2's Node went."""
    st = life.reach("agent-removed")
    before = st.data["pods before"]
    assert len(before) == 4 and set(before.values()) == {"h2"}, before
    assert st.data["samples"] > 0 and st.data["fewest ready"] >= 3, "the drain went below the disruption budget"
    kube = life.kube()
    now = wait_for(
        "4 Ready pods on the remaining nodes",
        lambda: (ps := ready_pods(pods(kube, f"app={APP}"))) and len(ps) == 4 and ps,
    )
    assert {p["spec"]["nodeName"] for p in now} <= {"h1", "h3"}
    assert not set(before) & {p["metadata"]["name"] for p in now}, "the pods on h2 were evicted, not kept"
    r = kube.kubectl("get", "node", "h2", check=False)
    assert r.returncode == 1 and 'nodes "h2" not found' in r.stderr


def test_growing_to_three_servers_does_not_reinstall_the_first(env: Env, life: Lifecycle) -> None:
    """1 → 3 servers: the first server gets `cluster-init` (and the new servers in tls-san), so
    its config changes and K3s restarts once on it — acceptable: that restart is how the
    stand-in (like K3s) switches to embedded etcd; it is not reinstalled."""
    st = life.reach("grown")
    result = st.result
    h1, h4, h5 = env.h(1), env.h(4), env.h(5)
    ops = result.ops()
    assert ops.pop("k3s-h1-install") == "update"
    assert set(ops.values()) == {"create"}
    assert {n.split("-")[1] for n in ops} == {"h4", "h5"}, f"only the new servers are created: {ops}"
    h1_evs = since(h1, st.t0)
    assert names(h1_evs, "install", "uninstall") == [], "the first server is not reinstalled"
    assert names(h1_evs, "restart") == [("restart", "k3s")]
    assert yaml.safe_load(h1.path("/etc/rancher/k3s/config.yaml").read_text())["cluster-init"] is True
    for h in (h4, h5):
        cfg = yaml.safe_load(h.path("/etc/rancher/k3s/config.yaml").read_text())
        assert cfg["server"] == f"https://{h1.address}:6443"
        assert names(events(h), "install") == [("install", "k3s")]
    assert names(since(env.h(3), st.t0)) == [], "the agent is not touched"
    # joins one at a time: h1 restarted, then h4 installed, then h5
    by_name = {a.name: a for a in result.actions}
    assert by_name["k3s-h1-install"].started < by_name["k3s-h4-install"].started < by_name["k3s-h5-install"].started
    assert all_ready(h1, ["h1", "h3", "h4", "h5"])
    # the real etcd membership grew: h1's member is the one it had (not re-created), h4 and h5
    # joined it (voting members, no learner left), and every server sees the same three
    (first,) = st.data["members before"].values()
    for h in (h1, h4, h5):
        members = etcd_members(h)
        assert sorted(member_node(n) for n in members) == ["h1", "h4", "h5"], members
        h1_member = next(m for n, m in members.items() if member_node(n) == "h1")
        assert h1_member["ID"] == first["ID"], "h1 kept its etcd member"
        assert not any(m.get("isLearner") for m in members.values())
    assert etcd_healthy(h1) == [f"https://{h.address}:2379" for h in (h1, h4, h5)]
    # each joined server answers for the whole cluster, from its own API server and etcd member
    for h in (h4, h5):
        assert sorted(nodes_ready(h)) == ["h1", "h3", "h4", "h5"]


def test_version_change_restarts_one_server_at_a_time_and_the_api_stays_up(env: Env, life: Lifecycle) -> None:
    """An in-place upgrade of the 3-server cluster: each server restarts once (not reinstalled),
    the next only once the previous is back, agents after the servers; every probe round (a
    quorum read through etcd, to all three API servers at once) found one that answered."""
    st = life.reach("upgraded")
    probe: Probe = st.data["probe"]
    result = st.result
    servers, agent = ["h1", "h4", "h5"], "h3"
    ops = result.ops()
    for n in [*servers, agent]:
        assert ops[f"k3s-{n}-install"] == "update", f"{n}: {ops}"
        # the upgrade's stack also moves from the bundle directory to its three files (the old
        # upload's delete opens no session: pulumi-command never deletes what it copied)
        every = {a.name: a.op for a in result.actions}
        assert every[f"k3s-{n}-upload-bundle"] == "delete"
        assert {ops[f"k3s-{n}-upload-{k}"] for k in ("binary", "images", "installer")} == {"create"}
        assert "upgrading K3s v1.30.4+k3s1 -> v1.30.4+k3s2" in result.outputs[f"k3s-{n}-install"]["stdout"]
    restarted, back = {}, {}
    for n in [*servers, agent]:
        h = env.h(int(n[1:]))
        unit = "k3s-agent" if n == agent else "k3s"
        evs = since(h, st.t0)
        assert names(evs, "uninstall") == [], f"{n}: not reinstalled"
        assert names(evs, "restart") == [("restart", unit)], f"{n}: one restart: {names(evs)}"
        restarted[n] = next(e.t for e in evs if e.event == "restart")
        back[n] = next(e.t for e in evs if e.event == "ready" and e.t > restarted[n])
        assert run(h, "k3s --version").stdout.split()[2] == UPGRADE
    for prev, nxt in itertools.pairwise(servers):
        assert back[prev] < restarted[nxt], f"{nxt} restarted before {prev} was back"
    assert back[servers[-1]] < restarted[agent], "agents after the servers"
    # the nodes report the new version (the Node objects' kubeletVersion, from the real API)
    kube = life.kube()
    versions = {
        n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in kube.json("get", "nodes")["items"]
    }
    assert versions == dict.fromkeys(["h1", "h3", "h4", "h5"], UPGRADE)
    assert all_ready(env.h(1), ["h1", "h3", "h4", "h5"])
    assert etcd_healthy(env.h(1)) == [f"https://{env.h(i).address}:2379" for i in (1, 4, 5)]
    # the API stayed available: no probe round without an answer; each server was down once
    assert len(probe.rounds) > 20 and probe.rounds_with_no_answer() == 0
    for n in servers:
        assert probe.gaps(f"https://{env.h(int(n[1:])).address}:6443"), f"{n}'s API server never went down?"
    print(
        f"\nrolling upgrade: {len(probe.rounds)} probe rounds; longest gap with no API server answering "
        f"{probe.longest_gap():.2f}s; per server: "
        + ", ".join(f"{n} {probe.longest_gap(f'https://{env.h(int(n[1:])).address}:6443'):.1f}s" for n in servers)
    )


def test_removing_servers_shrinks_etcd_and_leaves_a_healthy_cluster(env: Env, life: Lifecycle) -> None:
    """3 → 1 servers: h5 then h4 leave (drain, Node deleted — which removes its etcd member through
    the etcd API —, then uninstalled); h1 keeps its member and the cluster stays healthy."""
    st = life.reach("server-removed")
    result = st.result
    h1, h4, h5 = env.h(1), env.h(4), env.h(5)
    ops = result.ops()
    for n in ("h4", "h5"):
        assert ops[f"k3s-{n}-ready"] == "delete" and ops[f"k3s-{n}-install"] == "delete"
    assert {n for n, op in ops.items() if op != "delete"} == {"k3s-h1-install"}, (
        "h1 restarts once for its new config (no cluster-init, tls-san); nothing else changes"
    )
    before = st.data["members before"]
    assert sorted(member_node(n) for n in before) == ["h1", "h4", "h5"]
    after = etcd_members(h1)
    assert [member_node(n) for n in after] == ["h1"]
    assert next(iter(after.values()))["ID"] == next(m for n, m in before.items() if member_node(n) == "h1")["ID"]
    assert etcd_healthy(h1) == [f"https://{h1.address}:2379"]
    # each Node (and with it its member) gone before that server's uninstall; h5 (joined last)
    # uninstalled first; the two Nodes' deletions may overlap (nothing orders them)
    h1_new = st.data["after"]["h1"]["events"][len(st.data["before"]["h1"]["events"]) :]
    deleted = {e.target: e.t for e in h1_new if e.event == "delete-node"}
    uninstalled = {
        n: next(e.t for e in since(env.h(int(n[1:])), st.t0) if e.event == "uninstall") for n in ("h4", "h5")
    }
    assert sorted(deleted) == ["h4", "h5"]
    assert deleted["h5"] < uninstalled["h5"] < uninstalled["h4"] and deleted["h4"] < uninstalled["h4"]
    for h in (h4, h5):
        assert clean(h) == []
    assert all_ready(h1, ["h1", "h3"])
    assert names(since(h1, st.t0), "install", "uninstall") == []
    assert names(since(h1, st.t0), "restart") == [("restart", "k3s")]


def test_removed_servers_can_join_again(env: Env, life: Lifecycle) -> None:
    """1 → 3 again: h4 and h5 freshly installed, new etcd members (not the removed ones)."""
    before = life.reach("server-removed").data["members before"]
    life.reach("regrown")
    members = etcd_members(env.h(1))
    assert sorted(member_node(n) for n in members) == ["h1", "h4", "h5"]
    for n in ("h4", "h5"):
        old = next(m for name, m in before.items() if member_node(name) == n)
        new = next(m for name, m in members.items() if member_node(name) == n)
        assert new["ID"] != old["ID"]
    assert etcd_healthy(env.h(5)) == [f"https://{env.h(i).address}:2379" for i in (1, 4, 5)]
    assert all_ready(env.h(5), ["h1", "h3", "h4", "h5"])


def test_destroy_uninstalls_agents_before_servers_and_leaves_hosts_clean(env: Env, life: Lifecycle) -> None:
    st = life.reach("destroyed")
    uninstalled = {}
    for i in (1, 3, 4, 5):
        h = env.h(i)
        evs = [e for e in since(h, st.t0) if e.event == "uninstall"]
        assert len(evs) == 1, f"{h.name}: {names(since(h, st.t0))}"
        uninstalled[h.name] = evs[0].t
    assert uninstalled["h3"] < min(uninstalled[s] for s in ("h1", "h4", "h5")), "agents before servers"
    assert uninstalled["h5"] < uninstalled["h4"] < uninstalled["h1"], "servers in reverse join order"
    drained = {e.target: e.t for e in since(env.h(1), st.t0) if e.event == "delete-node"}
    assert set(drained) == {"h1", "h3", "h4", "h5"}
    for n, t in drained.items():
        assert t < uninstalled[n], f"{n}: Node deleted before the uninstall"
    assert max(drained, key=drained.__getitem__) == "h1", "the first server's Node (and etcd member) goes last"
    for i in range(1, 6):
        assert clean(env.h(i)) == [], env.h(i).name
    assert life.driver.state.resources == {}
    # over the whole lifecycle (installs, updates, removal, growth, destroy): no secret on a command line
    for i in range(1, 6):
        for secret in (env.token, env.registry_password, *env.private_key_lines()):
            assert secret_exposures(env.h(i), secret) == [], env.h(i).name


# ------------------------------------------------------------------ host keys and connections


def test_wrong_pinned_host_key_is_refused_before_anything_runs_there(env: Env) -> None:
    env.fresh()
    h1, h2, h3 = env.h(1), env.h(2), env.h(3)

    def accepted(h: Host) -> int:
        return Path(h.state_dir, "sshd.log").read_text().count("Accepted publickey")

    def commands(h: Host) -> list[str]:  # what ran on h, sshd's own (pre-login) processes aside
        return [r.cmdline for r in process_cmdlines(h) if not r.argv[0].startswith(("sshd", "/usr/sbin/sshd"))]

    before = (accepted(h2), ssh_sessions(h2), commands(h2), events(h2))
    cfg = env.config([1], [2], host_keys={"h2": h3.host_key})  # h3's key pinned for h2
    with Driver(env.state_file(), command_timeout=TIMEOUT) as driver:
        with pytest.raises(DriverError) as err:
            driver.up(cfg)
        msg = str(err.value)
        assert h2.address in msg and "does not match the pinned hostKey" in msg
        result = err.value.result
        assert result is not None
        failed = [a for a in result.actions if not a.ok]
        assert failed and all(h2.address in a.where for a in failed)
        refused = min(a.started + a.seconds for a in failed)
        assert all(a.started <= refused for a in result.actions), "nothing new starts after the refusal"
        # nothing reached h2: no login, no session, no process, no event, no file
        assert (accepted(h2), ssh_sessions(h2), commands(h2), events(h2)) == before
        assert not h2.path("/var/tmp/ai-platform").exists()
        assert not any(k.split("::")[-1].startswith("k3s-h2-") for k in driver.state.resources)
        # only h1's steps ran (its uploads, and its install if it started with h2's uploads);
        # an upload's delete does nothing on the node (pulumi-command's CopyToRemote never
        # deletes what it copied): remove the bundle by hand
        assert all(k.split("::")[-1].startswith("k3s-h1-") for k in driver.state.resources)
        driver.destroy()
        assert driver.state.resources == {}
    run(h1, "rm -rf /var/tmp/ai-platform", check=True)
    assert clean(h1) == []


def test_connection_password_proxy_and_pinned_key(env: Env) -> None:
    """The driver's SSH client: password login, a jump host (proxy), the pin on the target."""
    h1, h2, h3 = env.h(1), env.h(2), env.h(3)
    key = Path(h1.client_key_path).read_text()
    with Driver(env.state_file(), command_timeout=TIMEOUT) as d:
        ssh: Ssh = d.ssh
        pw = Connection(host=h2.address, user="aiptest", password=h2.password, host_key=h2.host_key)
        r = ssh.exec(pw, "id -un; cat", "from stdin\n")
        assert (r.rc, r.stdout) == (0, "aiptest\nfrom stdin\n")
        jump = Connection(host=h1.address, user="root", private_key=key, host_key=h1.host_key)
        via = Connection(host=h2.address, user="root", private_key=key, host_key=h2.host_key, proxy=jump)
        r = ssh.exec(via, "hostname", None)
        assert (r.rc, r.stdout.strip()) == (0, "h2")
        assert "Accepted publickey for root from 10.231.0.11" in Path(h2.state_dir, "sshd.log").read_text()
        wrong = Connection(host=h2.address, user="root", private_key=key, host_key=h3.host_key, proxy=jump)
        with pytest.raises(HostKeyMismatch):
            ssh.exec(wrong, "hostname", None)


# ------------------------------------------------------------------ faults


def test_sshd_stopped_mid_run_fails_naming_the_host_then_converges(env: Env) -> None:
    env.fresh()
    h1, h2, h3 = env.h(1), env.h(2), env.h(3)
    stopped = threading.Event()

    def hook(phase: str, op: str, res: Any) -> None:
        if phase == "start" and res.name == "k3s-h3-install":
            stop_sshd(h3)
            stopped.set()

    state = env.state_file()
    cfg = env.config([1], [2, 3])
    try:
        with Driver(state, hook=hook, command_timeout=TIMEOUT) as driver, pytest.raises(DriverError) as err:
            driver.up(cfg)
    finally:
        if stopped.is_set():
            start_sshd(h3)
    assert stopped.is_set()
    msg = str(err.value)
    assert "k3s-h3-install" in msg and h3.address in msg and "after 3 failed attempts" in msg
    assert names(events(h3)) == [], "nothing ran on h3"
    assert names(events(h2), "install") == [("install", "k3s-agent")], "h2's install, started alongside, finished"
    # sshd back: the same plan converges; finished nodes are not reinstalled
    with Driver(state, command_timeout=TIMEOUT) as driver:
        result = driver.up(cfg)
    ops = result.ops()
    assert ops["k3s-h3-install"] == "create"
    assert "k3s-h1-install" not in ops and "k3s-h2-install" not in ops
    for h in (h1, h2, h3):
        assert len(names(events(h), "install")) == 1, h.name
    assert all_ready(h1, ["h1", "h2", "h3"])


def _tree(procs: dict[int, tuple[int, tuple[str, ...]]], root: int) -> set[int]:
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in procs.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def _cut(host: Host, when: str, killed: list[list[str]]) -> None:
    """Cut the k3s-install.sh run on HOST: kill the script and its children (not the daemon it
    started) and its SSH session. `unit`: as soon as the installer starts (binary in place,
    unit not written yet); `delay`: once K3s was started and waits out its start-up delay."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        procs = host_processes(host)
        script = [
            p
            for p, (_, argv) in procs.items()
            if len(argv) > 3 and argv[:2] == ("bash", "-c") and argv[3] == "k3s-install.sh"
        ]
        installer = any(argv[:1] == ("sh",) and argv[-1].endswith("/install.sh") for _, argv in procs.values())
        started = host.path("/run/aip/k3s.pid").exists()
        if script and ((when == "unit" and installer) or (when == "delay" and started)):
            victims = _tree(procs, script[0])
            parent = procs[script[0]][0]
            while parent in procs:  # the session: sshd's per-connection processes above the script
                argv = " ".join(procs[parent][1])
                if "[listener]" in argv:  # not sshd itself (the host ends with it)
                    break
                if argv.startswith("sshd:"):
                    victims.add(parent)
                parent = procs[parent][0]
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid in victims:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            killed.append([" ".join(procs[p][1][:2]) for p in victims])
            return
        time.sleep(0.005)


@pytest.mark.parametrize("when", ["unit", "delay"])
def test_node_script_cut_mid_way_then_converges(env: Env, when: str) -> None:
    env.fresh()
    h1 = env.h(1)
    killed: list[list[str]] = []

    def hook(phase: str, op: str, res: Any) -> None:
        if phase == "start" and res.name == "k3s-h1-install":
            threading.Thread(target=_cut, args=(h1, when, killed), daemon=True).start()

    state = env.state_file()
    cfg = env.config([1], [2])
    with Driver(state, hook=hook, command_timeout=TIMEOUT) as driver, pytest.raises(DriverError) as err:
        driver.up(cfg)
    assert killed, "the install script was not cut"
    assert "k3s-h1-install" in str(err.value) and h1.address in str(err.value)
    if when == "unit":  # the state that used to never converge: binary in place, no unit
        assert h1.path("/usr/local/bin/k3s").exists()
        assert not h1.path("/etc/systemd/system/k3s.service").exists(), "cut too late to test this case"
    with Driver(state, command_timeout=TIMEOUT) as driver:
        result = driver.up(cfg)
        assert result.ops()["k3s-h1-install"] == "create"
        if when == "unit":
            assert "did not finish" in result.outputs["k3s-h1-install"]["stdout"]
        assert all_ready(h1, ["h1", "h2"])
        assert run(h1, "systemctl is-enabled k3s").stdout.strip() == "enabled"
        assert not h1.path("/etc/rancher/k3s/install.aip-pending").exists()
        assert driver.up(cfg).actions == [], "and the next run finds nothing to do"
