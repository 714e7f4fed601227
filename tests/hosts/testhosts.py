"""SSH test hosts for tests: a thin Python face of scripts/testhosts.sh.

    from tests.hosts.testhosts import TestHosts, run, process_cmdlines

    with TestHosts(3) as hosts:             # or th = TestHosts(3); hosts = th.up(); ...; th.down()
        r = run(hosts[0], "hostname")       # ssh root@10.231.0.11 with the pinned host key
        r = run(hosts[1], "sudo systemctl is-active k3s-agent", user="aiptest")
        r = run(hosts[1], "id -un", user="aiptest", password=True)   # password login
        assert not secret_exposures(hosts[1], token)                  # no secret on a cmdline

Needs root and `ip netns` (see scripts/testhosts.sh). Also the command-line capture daemon
(`python3 tests/hosts/testhosts.py _capture --state DIR --hosts N`, started by `up`): it
records every process exec'd inside a host's namespaces to $STATE/h<i>/cmdlines.log, one JSON
object a line: {"t", "pid", "ppid", "uid", "src": "exec"|"poll", "argv", "cmdline"}.
How: the kernel's process-events connector (an event at each exec, read at once), plus a
scan of /proc every 20 ms (catches argv rewritten after exec and is the fallback where the
connector is unavailable). It can miss a process that exits within microseconds of its exec
(`true`, a short `printf` binary); for those, sudo's log (every `sudo` command with its
arguments, $STATE/h<i>/var-log/aip/sudo.log) and the remote command of each ssh session
(bash -c '...', a long-lived shell that the capture sees) close most of the gap.
Only the Python standard library is used here (the capture daemon runs with /usr/bin/python3).
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "testhosts.sh"
DEFAULT_STATE = "/tmp/aip-testhosts"
BRIDGE = "aip-br0"
BRIDGE_ADDR = "10.231.0.1"
NETWORK = ipaddress.ip_network("10.231.0.0/24")

# in-host path prefix -> directory under the host's state dir (scripts/testhosts.sh)
PRIVATE_DIRS = {
    "/etc/rancher": "etc-rancher",
    "/var/lib/rancher": "var-lib-rancher",
    "/etc/systemd": "etc-systemd",
    "/usr/local/bin": "usr-local-bin",
    "/usr/local/sbin": "usr-local-sbin",
    "/var/log": "var-log",
    "/root": "root",
    "/home/aiptest": "home-aiptest",
    "/var/tmp": "var-tmp",
    "/opt": "opt",
    "/tmp": "tmp",
    "/run/aip": "run-aip",
}


def state_dir_default() -> str:
    return os.environ.get("AIP_TESTHOSTS_DIR", DEFAULT_STATE)


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    home: str
    auth: tuple[str, ...]
    sudo: bool


@dataclasses.dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int
    netns: str
    host_key: str  # "ssh-ed25519 AAAA..."
    users: dict[str, User]
    client_key_path: str
    password_path: str
    known_hosts_path: str
    state_dir: str

    def path(self, inside: str) -> Path:
        """Where an in-host path of a private directory lives, seen from the root namespace:
        host.path('/etc/rancher/k3s/k3s.yaml') -> $STATE/h1/etc-rancher/k3s/k3s.yaml."""
        best = ""
        for prefix in PRIVATE_DIRS:
            if (inside == prefix or inside.startswith(prefix + "/")) and len(prefix) > len(best):
                best = prefix
        if not best:
            raise ValueError(f"{inside} is not in a private directory of the test host")
        return Path(self.state_dir) / PRIVATE_DIRS[best] / inside[len(best) :].lstrip("/")

    @property
    def password(self) -> str:
        return Path(self.password_path).read_text().strip()

    @property
    def events_path(self) -> Path:
        return self.path("/var/log/aip/events.log")


def load_hosts(state_dir: str | None = None) -> list[Host]:
    state = state_dir or state_dir_default()
    raw = json.loads(Path(state, "hosts.json").read_text())
    hosts = []
    for h in raw:
        users = {
            name: User(name=name, home=u["home"], auth=tuple(u["auth"]), sudo=bool(u["sudo"]))
            for name, u in h["users"].items()
        }
        hosts.append(
            Host(
                name=h["name"],
                address=h["address"],
                port=int(h["port"]),
                netns=h["netns"],
                host_key=h["host_key"],
                users=users,
                client_key_path=h["client_key_path"],
                password_path=h["password_path"],
                known_hosts_path=h["known_hosts_path"],
                state_dir=h["state_dir"],
            )
        )
    return hosts


def unsupported_reason() -> str | None:
    """Why the test hosts cannot run here, or None."""
    if os.geteuid() != 0:
        return "test hosts need root (network namespaces, bind mounts, sshd)"
    try:
        r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`ip netns` unavailable: {e}"
    if r.returncode != 0:
        return f"`ip netns` unsupported: {r.stderr.strip()}"
    # missing sshd/sudo is not a reason to skip: `up` fails and says what to install
    return None


class TestHosts:
    """`TestHosts(n).up()` -> list[Host]; `.down()`. Also a context manager."""

    __test__ = False  # not a pytest test class

    def __init__(self, n: int, state_dir: str | None = None, timeout: float = 120, capture: bool = True):
        self.n = n
        self.capture = capture  # False: no command-line capture daemon (cmdlines.log stays empty)
        self.state_dir = state_dir or state_dir_default()
        self.timeout = timeout
        self.hosts: list[Host] = []
        self.up_seconds: float | None = None
        self.down_seconds: float | None = None

    def _script(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "AIP_TESTHOSTS_DIR": self.state_dir, "AIP_TESTHOSTS_CAPTURE": "1" if self.capture else "0"}
        return subprocess.run(
            ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=self.timeout
        )

    def up(self) -> list[Host]:
        self._script("down")  # leftovers of an earlier, interrupted run
        t0 = time.monotonic()
        r = self._script("up", str(self.n))
        self.up_seconds = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError(f"testhosts.sh up {self.n} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        self.hosts = load_hosts(self.state_dir)
        return self.hosts

    def down(self) -> None:
        t0 = time.monotonic()
        r = self._script("down")
        self.down_seconds = time.monotonic() - t0
        self.hosts = []
        if r.returncode != 0:
            raise RuntimeError(f"testhosts.sh down failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    def status(self) -> subprocess.CompletedProcess[str]:
        return self._script("status")

    def __enter__(self) -> list[Host]:
        return self.up()

    def __exit__(self, *exc: Any) -> None:
        self.down()


def _network_guard(host: Host) -> None:
    """Never send a packet unless it can only go to our bridge: the host address must be in
    10.231.0.0/24 and aip-br0 must hold 10.231.0.1 (else the route would be the default one)."""
    if ipaddress.ip_address(host.address) not in NETWORK:
        raise RuntimeError(f"{host.address} is not a test-host address")
    r = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE], capture_output=True, text=True)
    if r.returncode != 0 or f" {BRIDGE_ADDR}/24 " not in r.stdout:
        raise RuntimeError(f"test hosts are down ({BRIDGE} absent): refusing to connect to {host.address}")


def ssh_command(
    host: Host,
    cmd: str | None,
    user: str = "root",
    *,
    password: bool = False,
    known_hosts: str | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The argv of the system ssh client for HOST with the pinned host key."""
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        "-p",
        str(host.port),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts or host.known_hosts_path}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "HostKeyAlgorithms=ssh-ed25519",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
    ]
    if password:
        argv += [
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
        ]
    else:
        argv += ["-i", host.client_key_path, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
    argv += [*extra, f"{user}@{host.address}"]
    if cmd is not None:
        argv.append(cmd)
    return argv


def run(
    host: Host,
    cmd: str,
    user: str = "root",
    *,
    password: bool = False,
    input: str | None = None,
    timeout: float = 60,
    check: bool = False,
    known_hosts: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run CMD on HOST over ssh (key auth, or password auth through SSH_ASKPASS: the password
    is never on a command line). Returns the CompletedProcess (text)."""
    _network_guard(host)
    env = dict(os.environ)
    if password:
        env["SSH_ASKPASS"] = str(Path(host.password_path).parent / "askpass.sh")
        env["SSH_ASKPASS_REQUIRE"] = "force"
        env.setdefault("DISPLAY", ":0")
    r = subprocess.run(
        ssh_command(host, cmd, user, password=password, known_hosts=known_hosts),
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        start_new_session=password,  # no controlling tty: ssh must use SSH_ASKPASS
    )
    if check and r.returncode != 0:
        raise AssertionError(
            f"{host.name}: {cmd!r} as {user} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        )
    return r


def copy_to(host: Host, src: str | Path, dest: str, user: str = "root", timeout: float = 60) -> None:
    """Copy a local file to HOST (ssh + cat, like a CopyToRemote)."""
    data = Path(src).read_bytes()
    _network_guard(host)
    r = subprocess.run(
        ssh_command(host, f"cat > {shlex.quote(dest)}", user), input=data, capture_output=True, timeout=timeout
    )
    if r.returncode != 0:
        raise AssertionError(f"copy to {host.name}:{dest} failed: {r.stderr.decode(errors='replace')}")


@dataclasses.dataclass(frozen=True)
class CmdlineRecord:
    t: float
    pid: int
    ppid: int
    uid: int
    src: str  # "exec" (process-events connector) or "poll" (/proc scan)
    argv: tuple[str, ...]

    @property
    def cmdline(self) -> str:
        return " ".join(self.argv)


def process_cmdlines(host: Host) -> list[CmdlineRecord]:
    """Every distinct command line seen on HOST since `up` (see the module doc)."""
    out = []
    p = Path(host.state_dir, "cmdlines.log")
    if not p.exists():
        return out
    for line in p.read_text(errors="replace").splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        out.append(
            CmdlineRecord(t=d["t"], pid=d["pid"], ppid=d["ppid"], uid=d["uid"], src=d["src"], argv=tuple(d["argv"]))
        )
    return out


def sudo_log(host: Host) -> str:
    """sudo's log of every command run through sudo on HOST (user, cwd, full command)."""
    p = host.path("/var/log/aip/sudo.log")
    return p.read_text(errors="replace") if p.exists() else ""


def sshd_log(host: Host) -> str:
    p = Path(host.state_dir, "sshd.log")
    return p.read_text(errors="replace") if p.exists() else ""


@dataclasses.dataclass(frozen=True)
class Event:
    t: float
    event: str
    target: str


def events(host: Host) -> list[Event]:
    """/var/log/aip/events.log of HOST: `<time> <event> <target>` lines (stand-in systemctl,
    installer, uninstall scripts, API server)."""
    p = host.events_path
    out = []
    if p.exists():
        for line in p.read_text().splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3:
                out.append(Event(float(parts[0]), parts[1], parts[2]))
    return out


def host_processes(host: Host) -> dict[int, tuple[int, tuple[str, ...]]]:
    """Processes of HOST now, seen from the root namespace: {pid: (ppid, argv)} (root-namespace pids)."""
    r = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True)
    out: dict[int, tuple[int, tuple[str, ...]]] = {}
    for pid in r.stdout.split():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        ppid = next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("PPid:")), 0)
        argv = tuple(a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0") if raw)
        out[int(pid)] = (ppid, argv)
    return out


def sshd_pid(host: Host) -> int:
    """Root-namespace pid of HOST's listening sshd (sshd.pid holds its pid inside the host)."""
    inside = Path(host.state_dir, "sshd.pid").read_text().strip()
    for pid in host_processes(host):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        nspid = next((ln.split()[-1] for ln in status.splitlines() if ln.startswith("NSpid:")), "")
        if nspid == inside:
            return pid
    raise RuntimeError(f"sshd of {host.name} not found")


def stop_sshd(host: Host) -> None:
    """Freeze HOST's sshd (SIGSTOP): new connections get no banner and time out, as with a dead
    or unreachable sshd; sessions already open keep running. (Killing it would end the host:
    the host's PID 1 exits with its sshd.)"""
    os.kill(sshd_pid(host), signal.SIGSTOP)


def start_sshd(host: Host) -> None:
    """Undo stop_sshd (SIGCONT)."""
    os.kill(sshd_pid(host), signal.SIGCONT)


def ssh_sessions(host: Host) -> int:
    """SSH sessions HOST's sshd has started since `up` (commands and sftp), from its log."""
    return sshd_log(host).count("Starting session:")


def count_events(host: Host, event: str, target: str | None = None) -> int:
    return sum(1 for e in events(host) if e.event == event and (target is None or e.target == target))


def secret_exposures(host: Host, secret: str) -> list[str]:
    """Places on HOST where SECRET showed up on a command line: process command lines,
    sudo's command log. Empty list = not seen."""
    if not secret:
        raise ValueError("empty secret")
    hits = [f"cmdline pid {r.pid}: {r.cmdline}" for r in process_cmdlines(host) if secret in r.cmdline]
    hits += [f"sudo.log: {line}" for line in sudo_log(host).splitlines() if secret in line]
    return hits


# ------------------------------------------------------------------ capture daemon

_NETLINK_CONNECTOR = 11
_CN_IDX_PROC = 1
_CN_VAL_PROC = 1
_PROC_CN_MCAST_LISTEN = 1
_PROC_EVENT_FORK = 0x1
_PROC_EVENT_EXEC = 0x2


class _Capture:
    def __init__(self, state: str, n: int, interval: float):
        self.state = state
        self.interval = interval
        self.lock = threading.Lock()
        self.ns: dict[str, int] = {}  # "net:[inode]" -> host index
        for i in range(1, n + 1):
            ino = os.stat(f"/run/netns/aip-h{i}").st_ino
            self.ns[f"net:[{ino}]"] = i
        self.files = {i: open(Path(state, f"h{i}", "cmdlines.log"), "a", buffering=1) for i in range(1, n + 1)}
        self.cache: dict[int, int | None] = {}  # pid -> host index (None: not a host process)
        self.seen: dict[int, set[tuple[str, ...]]] = {}  # pid -> argvs recorded
        self.stop = threading.Event()

    def host_of(self, pid: int) -> int | None:
        if pid in self.cache:
            return self.cache[pid]
        try:
            host = self.ns.get(os.readlink(f"/proc/{pid}/ns/net"))
        except OSError:
            return None
        self.cache[pid] = host
        return host

    def record(self, pid: int, src: str) -> None:
        host = self.host_of(pid)
        if host is None:
            return
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            return
        if not raw:
            return
        argv = tuple(a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0"))
        with self.lock:
            seen = self.seen.setdefault(pid, set())
            if argv in seen:
                return
            seen.add(argv)
            ppid, uid = 0, -1
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("PPid:"):
                            ppid = int(line.split()[1])
                        elif line.startswith("Uid:"):
                            uid = int(line.split()[1])
            except OSError:
                pass
            rec = {
                "t": round(time.time(), 3),
                "pid": pid,
                "ppid": ppid,
                "uid": uid,
                "src": src,
                "argv": list(argv),
                "cmdline": " ".join(argv),
            }
            self.files[host].write(json.dumps(rec) + "\n")

    def forget(self, pid: int) -> None:
        with self.lock:
            self.cache.pop(pid, None)
            self.seen.pop(pid, None)

    def connector(self) -> None:
        try:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_CONNECTOR)
            s.bind((0, _CN_IDX_PROC))
            op = struct.pack("=I", _PROC_CN_MCAST_LISTEN)
            cn = struct.pack("=IIIIHH", _CN_IDX_PROC, _CN_VAL_PROC, 0, 0, len(op), 0) + op
            s.send(struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError as e:
            print(f"capture: process-events connector unavailable ({e}); /proc polling only", flush=True)
            return
        print("capture: process-events connector on", flush=True)
        s.settimeout(0.5)
        while not self.stop.is_set():
            try:
                data = s.recv(65536)
            except TimeoutError:
                continue
            except OSError as e:  # ENOBUFS: events were lost; the poller still runs
                print(f"capture: connector: {e}", flush=True)
                continue
            off = 0
            while off + 16 <= len(data):
                nl_len = struct.unpack_from("=I", data, off)[0]
                if nl_len < 16:
                    break
                msg = data[off + 16 : off + nl_len]
                off += (nl_len + 3) & ~3
                if len(msg) < 20 + 16 + 8:
                    continue
                what = struct.unpack_from("=I", msg, 20)[0]
                if what == _PROC_EVENT_EXEC:
                    pid = struct.unpack_from("=I", msg, 36)[0]
                    self.forget(pid)
                    self.record(pid, "exec")
                elif what == _PROC_EVENT_FORK and len(msg) >= 52:
                    child = struct.unpack_from("=I", msg, 44)[0]
                    self.forget(child)

    def poll(self) -> None:
        empty_since = None
        while not self.stop.is_set():
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
            live = set(pids)
            for pid in pids:
                if self.host_of(pid) is not None:
                    self.record(pid, "poll")
            with self.lock:
                for pid in [p for p in self.cache if p not in live]:
                    self.cache.pop(pid, None)
                    self.seen.pop(pid, None)
            # stop by itself once every host namespace is gone (down removes them)
            if not any(os.path.exists(f"/run/netns/aip-h{i}") for i in self.files):
                empty_since = empty_since or time.monotonic()
                if time.monotonic() - empty_since > 2:
                    self.stop.set()
            time.sleep(self.interval)


def _capture_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="testhosts.py _capture")
    ap.add_argument("--state", required=True)
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--interval", type=float, default=0.02)
    a = ap.parse_args(argv)
    cap = _Capture(a.state, a.hosts, a.interval)
    signal.signal(signal.SIGTERM, lambda *_: cap.stop.set())
    t = threading.Thread(target=cap.connector, daemon=True)
    t.start()
    cap.poll()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_capture":
        sys.exit(_capture_main(sys.argv[2:]))
    print("usage: testhosts.py _capture --state DIR --hosts N", file=sys.stderr)
    sys.exit(2)
