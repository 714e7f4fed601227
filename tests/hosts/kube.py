"""The test hosts' Kubernetes API from the root namespace (the provisioner's side): the real
kubectl that scripts/tools.sh builds, with the kubeconfig the program reads back and rewrites,
and a prober that records which API servers answer while something rolls.

Only addresses of the test network are ever contacted (the kubeconfig's server must be one).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.hosts.testhosts import NETWORK
from tests.standin.make_bundle import ensure_tools


class Kube:
    """kubectl and raw API calls with one kubeconfig (its files in a private temporary directory)."""

    def __init__(self, kubeconfig: str, server: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="aip-kube-"))
        self.dir.chmod(0o700)
        # The client key must not outlive the test session in /tmp.
        weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)
        doc = yaml.safe_load(kubeconfig)
        if server is not None:
            doc["clusters"][0]["cluster"]["server"] = server
        self.server = doc["clusters"][0]["cluster"]["server"]
        host = urlsplit(self.server).hostname or ""
        if ipaddress.ip_address(host) not in NETWORK:
            raise RuntimeError(f"{self.server} is not on the test network")
        self.path = self.dir / "kubeconfig"
        self.path.write_text(yaml.safe_dump(doc))
        self.path.chmod(0o600)
        user = doc["users"][0]["user"]
        cluster = doc["clusters"][0]["cluster"]
        self.ca = self._file("ca.crt", cluster["certificate-authority-data"])
        self.cert = self._file("client.crt", user["client-certificate-data"])
        self.key = self._file("client.key", user["client-key-data"])
        self.kubectl_bin = str(ensure_tools()["kubectl"])

    def _file(self, name: str, b64: str) -> str:
        p = self.dir / name
        p.write_bytes(base64.b64decode(b64))
        p.chmod(0o600)
        return str(p)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [self.kubectl_bin, f"--kubeconfig={self.path}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, objs: Sequence[dict[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))

    def context(self, server: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def get(self, server: str, path: str, timeout: float = 3.0) -> tuple[int, str]:
        """One GET to SERVER (https://IP:PORT) with the kubeconfig's credentials."""
        u = urlsplit(server)
        host = u.hostname or ""
        if ipaddress.ip_address(host) not in NETWORK:
            raise RuntimeError(f"{server} is not on the test network")
        conn = http.client.HTTPSConnection(host, u.port or 443, timeout=timeout, context=self.context(server))
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            conn.close()


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 120, interval: float = 0.5) -> Any:
    """Poll FN until it returns a true value (a condition, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def pods(kube: Kube, selector: str, namespace: str = "default") -> list[dict[str, Any]]:
    return kube.json("get", "pods", "-n", namespace, "-l", selector)["items"]


def ready_pods(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in items:
        if p["metadata"].get("deletionTimestamp"):
            continue
        conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
        if p.get("status", {}).get("phase") == "Running" and conds.get("Ready") == "True":
            out.append(p)
    return out


@dataclass
class Probe:
    """Every INTERVAL seconds, one GET of PATH to each server at once (a quorum read through
    etcd: the namespace object). `rounds` holds (time, servers that answered 200)."""

    kube: Kube
    servers: list[str]
    path: str = "/api/v1/namespaces/kube-system"
    interval: float = 0.2
    timeout: float = 5.0  # generous: a slow answer on a loaded machine is still an answer
    rounds: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _one(self, server: str, ok: set[str], lock: threading.Lock) -> None:
        try:
            status, _ = self.kube.get(server, self.path, self.timeout)
        except (TimeoutError, OSError, ssl.SSLError, http.client.HTTPException):
            return
        if status == 200:
            with lock:
                ok.add(server)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.time()
            ok: set[str] = set()
            lock = threading.Lock()
            threads = [threading.Thread(target=self._one, args=(s, ok, lock)) for s in self.servers]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            self.rounds.append((t, frozenset(ok)))
            self._stop.wait(max(0.0, self.interval - (time.time() - t)))

    def __enter__(self) -> Probe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def gaps(self, server: str | None = None) -> list[float]:
        """Lengths of the stretches where SERVER (None: every server) did not answer: from the last
        round that answered before it to the first one after."""
        out = []
        last_ok: float | None = None
        down = False
        for t, ok in self.rounds:
            up = (server in ok) if server else bool(ok)
            if up:
                if down and last_ok is not None:
                    out.append(t - last_ok)
                last_ok, down = t, False
            else:
                down = True
        if down and last_ok is not None and self.rounds:
            out.append(self.rounds[-1][0] - last_ok)
        return out

    def longest_gap(self, server: str | None = None) -> float:
        return max(self.gaps(server), default=0.0)

    def rounds_with_no_answer(self) -> int:
        return sum(1 for _, ok in self.rounds if not ok)
