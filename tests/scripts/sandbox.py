"""Run the rendered node scripts for real, in a temporary root.

The sandbox is a directory used as `AIP_ROOT` (the scripts prefix every path with it),
plus a `bin/` first on PATH with small fakes of the commands a node provides:
`systemctl` (records start/restart/stop in `events.log`, can be told to fail), `journalctl`
(the failing unit's log) and a
K3s installer + `k3s` binary that honour `AIP_ROOT`. They stand in for a node only as
far as these scripts look; the SSH test hosts (tests/hosts) use the fuller stand-in.
"""

from __future__ import annotations

import http.server
import subprocess
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from components import scripts

FAKE_SYSTEMCTL = r"""#!/usr/bin/env bash
# fake systemctl for the sandbox: state in $AIP_ROOT/run/svc-<name>, events in events.log
set -u
ev="$AIP_ROOT/events.log"
quiet=0; args=()
for a in "$@"; do case "$a" in --quiet|-q) quiet=1 ;; *) args+=("$a") ;; esac; done
verb=${args[0]:-}; svc=${args[1]:-}
mkdir -p "$AIP_ROOT/run"
case "$verb" in
  is-active) [ -f "$AIP_ROOT/run/svc-$svc" ] && { [ $quiet = 1 ] || echo active; exit 0; }; [ $quiet = 1 ] || echo inactive; exit 3 ;;
  start|restart)
    echo "$verb $svc" >>"$ev"
    if [ -f "$AIP_ROOT/fail-restart" ] && grep -q "$(cat "$AIP_ROOT/fail-restart")" "$AIP_ROOT/etc/rancher/k3s/registries.yaml" 2>/dev/null; then
      rm -f "$AIP_ROOT/run/svc-$svc"; exit 1
    fi
    if [ -f "$AIP_ROOT/fail-start" ]; then  # the unit exits at once, saying why in its log
      mkdir -p "$AIP_ROOT/log"; cat "$AIP_ROOT/fail-start" >>"$AIP_ROOT/log/$svc.log"
      rm -f "$AIP_ROOT/run/svc-$svc"; echo "Job for $svc.service failed" >&2; exit 1
    fi
    touch "$AIP_ROOT/run/svc-$svc" ;;
  stop) echo "stop $svc" >>"$ev"; rm -f "$AIP_ROOT/run/svc-$svc" ;;
  enable|daemon-reload) ;;
  *) echo "fake systemctl: unsupported $verb" >&2; exit 1 ;;
esac
"""

FAKE_JOURNALCTL = r"""#!/usr/bin/env bash
# fake journalctl for the sandbox: -u UNIT [-n N] prints the tail of $AIP_ROOT/log/UNIT.log
unit=""; n=10
while [ $# -gt 0 ]; do case "$1" in -u) unit=$2; shift ;; -n) n=$2; shift ;; esac; shift; done
[ -f "$AIP_ROOT/log/$unit.log" ] && tail -n "$n" "$AIP_ROOT/log/$unit.log"
exit 0
"""

FAKE_K3S = r"""#!/usr/bin/env bash
# fake k3s binary (version baked in) for the sandbox
case "$1" in
  --version) echo "k3s version @VERSION@ (sandbox)"; echo "go version go1.22" ;;
  kubectl)
    shift
    if [ "$1 $2" = "get --raw" ]; then [ -f "$AIP_ROOT/run/svc-k3s" ] && echo ok && exit 0; exit 1; fi
    if [ "$1 $2" = "get node" ]; then echo True; exit 0; fi
    echo "fake kubectl: $*" >>"$AIP_ROOT/events.log" ;;
esac
"""

FAKE_INSTALL = r"""#!/bin/sh
# fake K3s installer for the sandbox: airgap only, like install.sh with SKIP_DOWNLOAD
set -eu
[ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" = true ] || { echo "sandbox installer: no network" >&2; exit 1; }
[ -x "$AIP_ROOT/usr/local/bin/k3s" ] || { echo "no k3s binary" >&2; exit 1; }
role=${INSTALL_K3S_EXEC%% *}
svc=k3s; [ "$role" = agent ] && svc=k3s-agent
echo "install $role $INSTALL_K3S_VERSION" >>"$AIP_ROOT/events.log"
if [ "$role" = server ]; then u=k3s-uninstall.sh; else u=k3s-agent-uninstall.sh; fi
cat >"$AIP_ROOT/usr/local/bin/$u" <<EOS
#!/bin/sh
echo "uninstall $role" >>"$AIP_ROOT/events.log"
rm -f "$AIP_ROOT/run/svc-$svc" "$AIP_ROOT/usr/local/bin/k3s" "$AIP_ROOT/usr/local/bin/$u"
rm -rf "$AIP_ROOT/var/lib/rancher/k3s"
EOS
chmod 755 "$AIP_ROOT/usr/local/bin/$u"
systemctl restart "$svc"
"""


@dataclass
class Sandbox:
    root: Path

    @property
    def bundle(self) -> Path:
        return self.root / "bundle"

    def make_bundle(self, version: str) -> None:
        self.bundle.mkdir(parents=True, exist_ok=True)
        k3s = self.bundle / "k3s"
        k3s.write_text(FAKE_K3S.replace("@VERSION@", version))
        k3s.chmod(0o755)
        (self.bundle / "install.sh").write_text(FAKE_INSTALL)
        (self.bundle / "images.tar").write_text(f"images {version}\n")

    def setup(self) -> None:
        bin_ = self.root / "fakebin"
        bin_.mkdir(parents=True, exist_ok=True)
        sc = bin_ / "systemctl"
        sc.write_text(FAKE_SYSTEMCTL)
        sc.chmod(0o755)
        jc = bin_ / "journalctl"
        jc.write_text(FAKE_JOURNALCTL)
        jc.chmod(0o755)
        (self.root / "usr/local/bin").mkdir(parents=True, exist_ok=True)

    def run(
        self, script: str, args: dict[str, str], payload: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.root / 'fakebin'}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "AIP_ROOT": str(self.root),
            "HOME": str(self.root),
            "TMPDIR": str(self.root),
        }
        words = ["bash", "-c", scripts.render(script), script] + [f"{k}={v}" for k, v in args.items()]
        stdin = scripts.payload(payload) if payload is not None else ""
        return subprocess.run(words, input=stdin, env=env, capture_output=True, text=True, timeout=60)

    def events(self) -> list[str]:
        path = self.root / "events.log"
        return path.read_text().splitlines() if path.exists() else []

    def snapshot(self) -> dict[str, tuple[int, float, bytes]]:
        """(mode, mtime, content) of every file the scripts manage."""
        out = {}
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and "fakebin" not in p.parts and p.name != "events.log":
                st = p.stat()
                out[str(p.relative_to(self.root))] = (st.st_mode, st.st_mtime_ns, p.read_bytes())
        return out


class FakeKubelet:
    """The sandbox agent's kubelet /healthz on 127.0.0.1 (an ephemeral port): "ok" once `delay`
    seconds have passed since the fake systemctl last (re)started k3s-agent (the mtime of
    run/svc-k3s-agent), nothing while it is stopped, never when `broken` is set."""

    def __init__(self, root: Path, delay: float = 0.0) -> None:
        self.root, self.delay, self.broken = root, delay, False
        kubelet = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                state = kubelet.root / "run/svc-k3s-agent"
                try:
                    up = time.time() - state.stat().st_mtime >= kubelet.delay and not kubelet.broken
                except FileNotFoundError:
                    up = False
                code, body = (200, b"ok") if up and self.path == "/healthz" else (500, b"not ready")
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def config_yaml(name: str = "n1") -> str:
    return textwrap.dedent(f"""\
        node-name: {name}
        token-file: /etc/rancher/k3s/cluster-token
        """)
