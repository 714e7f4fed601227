"""A real Kubernetes control plane on loopback, for the engine tests.

    with ControlPlane(tmp_dir) as cp:      # etcd, kube-apiserver, kube-controller-manager, kube-scheduler
        cp.kubeconfig                       # admin kubeconfig text (client certificate, system:masters)
        cp.kubectl("get", "ns")             # the built kubectl against it

The binaries are the pinned ones `scripts/tools.sh` builds (groups `kubernetes` and `etcd`;
`kwok` when simulated nodes are asked for). Certificates are made with openssl in the
temporary directory; every port is a free loopback port chosen at start (never 6443, which
belongs to K3s and the test hosts). Nothing here sleeps to synchronise: start-up waits on
`/readyz`, and on the conditions the callers name.

Only loopback is contacted. The test hosts' control plane (issue 18) will be another source
of the same thing (a kubeconfig); `EngineCluster` in conftest.py picks one.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.engine.engine import tool

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], check=True, cwd=cwd, capture_output=True)


def make_pki(d: Path) -> None:
    """CA, API server serving cert (loopback + the service IP), admin client cert, SA keys."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=aip-engine-test-ca", cwd=d)  # fmt: skip
    (d / "apiserver.ext").write_text(
        "subjectAltName=IP:127.0.0.1,IP:" + SERVICE_IP + ",DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n"
    )
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subj, ext in (
        ("apiserver", "/CN=kube-apiserver", "apiserver.ext"),
        ("admin", "/O=system:masters/CN=aip-engine-admin", "client.ext"),
        ("front-proxy-client", "/CN=front-proxy-client", "client.ext"),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subj, cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", ext, cwd=d)  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


def kubeconfig_text(server: str, pki: Path, name: str = "aip-engine") -> str:
    import base64

    def b64(f: str) -> str:
        return base64.b64encode((pki / f).read_bytes()).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [
            {"name": name, "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")}}
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return yaml.safe_dump(doc, sort_keys=True)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler on 127.0.0.1."""

    dir: Path
    start_timeout: float = 180.0
    procs: list[Proc] = field(default_factory=list)
    api_port: int = 0

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        binaries = {
            n: str(tool(n)) for n in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
        }
        self.bin = binaries
        pki = self.dir / "pki"
        make_pki(pki)
        etcd_client, etcd_peer = free_port(), free_port()
        self.api_port = free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self.kubeconfig = kubeconfig_text(self.server, pki)
        self.kubeconfig_path = self.dir / "admin.kubeconfig"
        self.kubeconfig_path.write_text(self.kubeconfig)
        self._spawn("etcd", [
            binaries["etcd"], "--name", "aip-engine", "--data-dir", str(self.dir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"aip-engine=http://127.0.0.1:{etcd_peer}",
            "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
            "--quota-backend-bytes", str(1 << 30),
        ])  # fmt: skip
        self._spawn("kube-apiserver", [
            binaries["kube-apiserver"],
            "--etcd-servers", f"http://127.0.0.1:{etcd_client}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.api_port),
            "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--authorization-mode", "Node,RBAC",
            # aggregated APIs (APIService objects) need the front proxy
            "--requestheader-client-ca-file", str(pki / "ca.crt"),
            "--requestheader-allowed-names", "front-proxy-client",
            "--requestheader-username-headers", "X-Remote-User",
            "--requestheader-group-headers", "X-Remote-Group",
            "--requestheader-extra-headers-prefix", "X-Remote-Extra-",
            "--proxy-client-cert-file", str(pki / "front-proxy-client.crt"),
            "--proxy-client-key-file", str(pki / "front-proxy-client.key"),
            "--allow-privileged=true",
            "--profiling=false",
        ])  # fmt: skip
        self._wait_ready("kube-apiserver", f"{self.server}/readyz")

        def client_args() -> list[str]:  # the controller manager's and the scheduler's own
            return [
                "--kubeconfig", str(self.kubeconfig_path),
                "--authentication-kubeconfig", str(self.kubeconfig_path),
                "--authorization-kubeconfig", str(self.kubeconfig_path),
                "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
                "--leader-elect=false",
            ]  # fmt: skip

        self._spawn("kube-controller-manager", [
            binaries["kube-controller-manager"],
            *client_args(),
            "--service-account-private-key-file", str(pki / "sa.key"),
            "--root-ca-file", str(pki / "ca.crt"),
            "--cluster-signing-cert-file", str(pki / "ca.crt"),
            "--cluster-signing-key-file", str(pki / "ca.key"),
            "--use-service-account-credentials=false",
            "--controllers", "*",
        ])  # fmt: skip
        self._spawn("kube-scheduler", [binaries["kube-scheduler"], *client_args()])
        # The namespace controller's work (and so `pulumi destroy`) needs the
        # controller manager: wait until it has made the default ServiceAccount.
        self.wait_for(
            lambda: self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0,
            "kube-controller-manager to create the default ServiceAccount",
        )

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
        self.procs.clear()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self.dir / f"{name}.log"
        fh = log.open("wb")
        popen = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        fh.close()
        self.procs.append(Proc(name, popen, log))

    def _check_alive(self) -> None:
        for p in self.procs:
            if p.popen.poll() is not None:
                tail = p.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{p.name} exited with {p.popen.returncode}:\n{tail}")

    def _ssl(self) -> ssl.SSLContext:
        pki = self.dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def _wait_ready(self, what: str, url: str) -> None:
        ctx = self._ssl()

        def ready() -> bool:
            try:
                with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        self.wait_for(ready, f"{what} {url}")

    def wait_for(self, cond: Any, what: str, timeout: float | None = None) -> None:
        """Poll COND until true; fail (with the logs) if a process died or TIMEOUT passed."""
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while True:
            self._check_alive()
            if cond():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout or self.start_timeout}s for {what}")
            time.sleep(0.5)  # polling interval of a condition, not a synchronisation

    def simulated_node(self, name: str, labels: dict[str, str] | None = None) -> None:
        """A Node kept Ready by kwok (the pinned build), whose pods kwok marks Running: no
        process runs, but the controllers, the scheduler and rollouts act on it for real."""
        if not any(p.name == "kwok" for p in self.procs):
            port = free_port()
            self._spawn("kwok", [
                str(tool("kwok")), "--kubeconfig", str(self.kubeconfig_path),
                "--config", str(Path(__file__).with_name("kwok-stages.yaml")),
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds", "40",
                "--node-ip", "127.0.0.1", "--node-port", str(port),
                "--server-address", f"127.0.0.1:{port}",
            ])  # fmt: skip
        self.apply(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "type": "kwok",
                            **(labels or {}),
                        },
                    },
                }
            )
        )
        self.wait_for(
            lambda: (
                self.kubectl("wait", "--for=condition=Ready", f"node/{name}", "--timeout=5s", check=False).returncode
                == 0
            ),
            f"kwok to make node {name} Ready",
        )

    # -- use ----------------------------------------------------------------------

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.bin["kubectl"], "--kubeconfig", str(self.kubeconfig_path), *args],
            check=check,
            capture_output=True,
            text=True,
            input=stdin,
        )

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "--server-side", "--field-manager", "aip-engine-test-setup", "-f", "-", stdin=manifest)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)


@contextlib.contextmanager
def control_plane(dir_: Path) -> Iterator[ControlPlane]:
    cp = ControlPlane(dir_)
    try:
        cp.start()
        yield cp
    finally:
        cp.stop()
