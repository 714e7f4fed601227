"""A stand-in for the Pulumi engine, for the host tests only: it runs the node commands of a
plan over real SSH, exactly as the plan declares them. It is NOT an engine.

No Pulumi engine exists on the machines this project is built on (and none may be built), so
the host tests need something that does what `pulumi up` / `pulumi destroy` would do with the
`command:remote:*` resources the program declares — to drive the node scripts, nothing more.

What it does
- Builds the plan from the real program under the SDK's mock runtime
  (`stacks.mockrun.run(..., keep_secrets=True)`: the real stdin payloads and connections).
- Runs each `command:remote:Command` as pulumi-command 1.2 does: one SSH connection and one
  session per command; the `create` (`update`, `delete`) text is the exec request, `stdin` is
  fed, stdout is kept (one trailing newline trimmed). The connection comes from the resource's
  inputs: host, port, user, private key or password, the pinned `hostKey` (a mismatch refuses
  the connection: nothing runs on that host), `proxy` (one jump host), `dialErrorLimit`,
  `perDialTimeout`. The client is the system OpenSSH client with `StrictHostKeyChecking=yes`
  and a known_hosts file holding only the pinned key.
- Runs each `command:remote:CopyToRemote` as an SFTP upload of the local file to
  `remotePath`, parent directories created (pulumi-command 1.2 creates them too).
- Follows the plan's dependency order; independent resources run concurrently (a thread pool).
  After a failure it starts nothing new, lets running commands finish, and raises
  `DriverError` naming each failed resource and its host.
- Keeps a state file like the engine's (the resources that exist, their inputs, outputs and
  dependencies). A second `up` runs only what changed, with pulumi-command's rules: a change to
  `triggers` replaces the resource (delete first when `deleteBeforeReplace`); any other input
  change runs `update` (or `create`) again — for a CopyToRemote only if the file's content or
  `remotePath` changed; a resource no longer declared is deleted after the rest of the update,
  its dependents first, with the `delete` text, connection and stdin stored in the state.
  `up(force_update=True)` treats every resource as changed (each Command's create runs again).
- `destroy` runs every stored `delete` in reverse dependency order.

What it does not do
- No engine, CLI, plugins or backend: no preview display, no refresh, no import, no pending
  operations, no stack outputs, no `--parallel` / `--target`.
- It creates only `command:remote:*` resources. The plan's other resources (Kubernetes
  provider, NodePatch, RuntimeClass, components) are not created; a RandomPassword's value is
  the mock runtime's fixed stand-in (set `cluster.k3s.token`). A remote command depending on a
  resource it cannot create is refused: cluster-only stacks (platform layers off) only.
- Its state file holds secrets in plain text (mode 0600); the engine encrypts them.
- No dependent replacements for delete-before-replace, no `environment` (sshd refuses SetEnv
  without AcceptEnv anyway), no ssh-agent, no `privateKeyPassword`.
- A host-key mismatch is not retried (pulumi-command counts it as a dial error and retries up to
  `dialErrorLimit`; either way the connection is refused and nothing runs).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pulumi

from config import files
from stacks import mockrun

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
REMOTE_TYPES = (COMMAND, COPY)
# Custom resources a remote command may depend on although the driver does not create them:
# their values are already known in the plan (the mock runtime's).
PLAN_ONLY_TYPES = ("random:index/randomPassword:RandomPassword",)
CONNECTION_FIELDS = {
    "host",
    "port",
    "user",
    "privateKey",
    "password",
    "hostKey",
    "dialErrorLimit",
    "perDialTimeout",
    "proxy",
}
STATE_VERSION = 1

Hook = Callable[[str, str, "Resource"], None]  # (phase "start"|"end", op, resource)


class DriverError(RuntimeError):
    """The update failed (or the plan cannot be driven). `result` has what ran before."""

    def __init__(self, message: str, result: Result | None = None):
        super().__init__(message)
        self.result = result


class StepFailed(DriverError):
    pass


class DialError(StepFailed):
    pass


class HostKeyMismatch(DialError):
    pass


# ------------------------------------------------------------------ plan


@dataclass(frozen=True)
class Connection:
    host: str
    port: int = 22
    user: str = "root"
    private_key: str | None = None
    password: str | None = None
    host_key: str | None = None
    dial_error_limit: int = 10
    per_dial_timeout: int = 15
    proxy: Connection | None = None

    @classmethod
    def from_inputs(cls, c: Mapping[str, Any]) -> Connection:
        unsupported = sorted(set(c) - CONNECTION_FIELDS)
        if unsupported:
            raise DriverError(f"connection fields the driver does not support: {unsupported}")
        proxy = c.get("proxy")
        return cls(
            host=str(c["host"]),
            port=int(c.get("port") or 22),
            user=str(c.get("user") or "root"),
            private_key=c.get("privateKey"),
            password=c.get("password"),
            host_key=c.get("hostKey"),
            dial_error_limit=int(c.get("dialErrorLimit", 10)),
            per_dial_timeout=int(c.get("perDialTimeout", 15)),
            proxy=cls.from_inputs(proxy) if proxy else None,
        )

    @property
    def label(self) -> str:
        via = f" via {self.proxy.label}" if self.proxy else ""
        return f"{self.user}@{self.host}:{self.port}{via}"


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    inputs: dict[str, Any]  # secrets unwrapped; assets as {"asset": {"path", "sha256"}}
    dependencies: tuple[str, ...]  # keys of the remote resources it waits for
    delete_before_replace: bool = False

    @property
    def key(self) -> str:
        return f"{self.type}::{self.name}"

    @property
    def connection(self) -> Connection:
        return Connection.from_inputs(self.inputs["connection"])

    def as_state(self, outputs: Mapping[str, str]) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "inputs": self.inputs,
            "dependencies": list(self.dependencies),
            "deleteBeforeReplace": self.delete_before_replace,
            "outputs": dict(outputs),
        }

    @classmethod
    def from_state(cls, entry: Mapping[str, Any]) -> Resource:
        return cls(
            type=entry["type"],
            name=entry["name"],
            inputs=entry["inputs"],
            dependencies=tuple(entry.get("dependencies") or ()),
            delete_before_replace=bool(entry.get("deleteBeforeReplace")),
        )


@dataclass
class Plan:
    recording: mockrun.Recording
    resources: dict[str, Resource]  # by key, remote resources only
    not_created: list[str]  # other custom resources of the plan (keys)

    def by_name(self, name: str) -> Resource:
        found = [r for r in self.resources.values() if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} remote resources named {name!r}")
        return found[0]


def _digest(path: Path, memo: dict[Path, str]) -> str:
    """The content digest of a file or a directory (config/files.py's, the plan's own), once per
    path in a plan: every node's upload names the same bundle."""
    if path not in memo:
        memo[path] = files.fact(path.parent, "", path.name).sha256 or ""
    return memo[path]


def _plain(value: Any, memo: dict[Path, str]) -> Any:
    """raw_inputs → JSON data; a file asset becomes its path and content hash (what the engine diffs)."""
    if isinstance(value, pulumi.FileAsset):
        path = Path(str(value.path)).resolve()
        return {"asset": {"path": str(path), "sha256": _digest(path, memo)}}
    if isinstance(value, pulumi.StringAsset):
        return {"asset": {"text": value.text}}
    if isinstance(value, pulumi.FileArchive) and Path(str(value.path)).is_dir():
        path = Path(str(value.path)).resolve()
        slash = "/" if str(value.path).endswith("/") else ""  # "dir/": its contents (pulumi-command)
        return {"archive": {"path": f"{path}{slash}", "sha256": _digest(path, memo)}}
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        raise DriverError(f"the driver uploads file assets and directories only, not {type(value).__name__}")
    if isinstance(value, dict):
        return {k: _plain(v, memo) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, memo) for v in value]
    if value == mockrun.UNKNOWN:
        raise DriverError("an input is unknown in the plan: the driver needs every value")
    return value


def build_plan(raw_config: Mapping[str, Any], stack: str = "hosts", project_dir: Path = ROOT) -> Plan:
    """The program under the mock runtime → the remote resources to drive, with their real inputs."""
    rec = mockrun.run(raw_config, stack, project_dir, keep_secrets=True)
    declared = {d.key: d for d in rec.declared if not d.read}
    children: dict[str, list[str]] = {}
    for d in declared.values():
        if d.parent:
            children.setdefault(d.parent, []).append(d.key)

    def expand(key: str, seen: frozenset[str]) -> set[str]:
        if key in seen:
            return set()
        d = declared.get(key)
        if d is None:
            raise DriverError(f"dependency {key} is not in the plan")
        if d.type in REMOTE_TYPES:
            return {key}
        out: set[str] = set()
        if not d.custom:  # a component: waiting for it is waiting for its children
            for child in children.get(key, []):
                out |= expand(child, seen | {key})
            return out
        if d.type in PLAN_ONLY_TYPES:
            for dep in d.dependencies:
                out |= expand(dep, seen | {key})
            return out
        raise DriverError(
            f"a remote command depends on {key}, which the driver cannot create (cluster-only stacks only)"
        )

    resources: dict[str, Resource] = {}
    digests: dict[Path, str] = {}
    not_created = []
    for d in declared.values():
        if d.type not in REMOTE_TYPES:
            if d.custom:
                not_created.append(d.key)
            continue
        deps: set[str] = set()
        for dep in d.dependencies:
            deps |= expand(dep, frozenset({d.key}))
        resources[d.key] = Resource(
            type=d.type,
            name=d.name,
            inputs=_plain(d.raw_inputs, digests),
            dependencies=tuple(sorted(deps)),
            delete_before_replace=d.delete_before_replace,
        )
    return Plan(recording=rec, resources=resources, not_created=sorted(not_created))


# ------------------------------------------------------------------ ssh


@dataclass
class Exec:
    rc: int
    stdout: str
    stderr: str
    dials: int
    seconds: float
    cpu: float = 0.0  # CPU seconds of the ssh/sftp client processes, every dial (wait4's rusage)


class _Measured(subprocess.Popen[bytes]):
    """Popen that keeps the child's resource usage when it reaps it (wait4 in place of waitpid)."""

    cpu = 0.0

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        try:
            pid, sts, ru = os.wait4(self.pid, wait_flags)
        except ChildProcessError:  # as Popen's own: the child is gone and its status with it
            return self.pid, 0
        if pid == self.pid:
            self.cpu = ru.ru_utime + ru.ru_stime
        return pid, sts


_HOST_KEY_FAILURES = (
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "host key for",  # "No ED25519 host key is known for ..."
)


def _log_errors(text: str) -> str:
    noise = ("Authenticated to", "Transferred:", "Bytes per second", "@@@@")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(noise)]
    return "; ".join(lines[-3:]) or "no error from the ssh client"


GO_KEX = ",".join(
    [
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "diffie-hellman-group14-sha256",
        "diffie-hellman-group16-sha512",
    ]
)


class Ssh:
    """The system OpenSSH client, configured from a `Connection` the way pulumi-command dials."""

    def __init__(self, workdir: Path, command_timeout: float = 900):
        self.dir = workdir
        self.command_timeout = command_timeout
        self._lock = threading.Lock()
        self._seq = 0
        self._cpu: dict[int, float] = {}  # thread → client CPU seconds of its current step
        self._wrapper = self._file(
            "ssh-wrapper", '#!/bin/sh\nexec ssh -E "$AIP_SSH_LOG" -o "BatchMode=${AIP_SSH_BATCH:-yes}" "$@"\n', 0o700
        )

    def _file(self, kind: str, text: str, mode: int = 0o600) -> Path:
        """A private file in the work directory, named by its content."""
        path = self.dir / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        with self._lock:
            if not path.exists():
                tmp = path.with_name(path.name + ".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
                with os.fdopen(fd, "w") as f:
                    f.write(text)
                tmp.replace(path)
        return path

    def _log_path(self) -> Path:
        with self._lock:
            self._seq += 1
            return self.dir / f"ssh-{self._seq}.log"

    def options(self, conn: Connection, log: Path, to_log: bool = True) -> tuple[list[str], dict[str, str]]:
        """ssh options (no destination) and the environment they need; the client (and a proxy's
        client) log to LOG (`-E`; with `to_log=False` the caller passes `-E` itself)."""
        opts = [
            "-F",
            "/dev/null",
            "-o",
            f"Port={conn.port}",
            "-o",
            f"User={conn.user}",
            "-o",
            "ConnectionAttempts=1",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "UpdateHostKeys=no",
            "-o",
            "RequestTTY=no",
            "-o",
            "ForwardAgent=no",
            "-o",
            "ClearAllForwardings=yes",
            "-o",
            "LogLevel=VERBOSE",
            # pulumi-command dials with Go's x/crypto/ssh, whose key exchanges are these (plus
            # mlkem768x25519, which this OpenSSH lacks); OpenSSH's own first choice,
            # sntrup761x25519, costs ~0.1 s of CPU per session on each side and is not one Go offers
            "-o",
            f"KexAlgorithms={GO_KEX}",
        ]
        if conn.per_dial_timeout > 0:
            opts += ["-o", f"ConnectTimeout={conn.per_dial_timeout}"]
        if conn.host_key:
            parts = conn.host_key.split()
            pattern = conn.host if conn.port == 22 else f"[{conn.host}]:{conn.port}"
            known = self._file("known_hosts", f"{pattern} {parts[0]} {parts[1]}\n")
            opts += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}"]
            opts += ["-o", f"HostKeyAlgorithms={parts[0]}"]
        else:  # pulumi-command without hostKey: the host key is ignored
            opts += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        methods = []
        if conn.private_key:
            key = conn.private_key if conn.private_key.endswith("\n") else conn.private_key + "\n"
            opts += ["-o", f"IdentityFile={self._file('key', key)}", "-o", "IdentitiesOnly=yes"]
            methods.append("publickey")
        else:
            opts += ["-o", "PubkeyAuthentication=no"]
        env: dict[str, str] = {}
        if conn.password:
            methods += ["password", "keyboard-interactive"]
            secret = self._file("password", conn.password)
            askpass = self._file("askpass", f"#!/bin/sh\ncat {shlex.quote(str(secret))}\n", 0o700)
            opts += ["-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"]
            env.update({"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
            env["AIP_SSH_BATCH"] = "no"
        else:
            opts += ["-o", "BatchMode=yes"]
        opts += ["-o", f"PreferredAuthentications={','.join(methods) or 'none'}"]
        if conn.proxy is not None:
            if conn.proxy.password and conn.password and conn.proxy.password != conn.password:
                raise DriverError("the driver cannot use two different passwords for a node and its proxy")
            popts, penv = self.options(conn.proxy, log)
            env.update(penv)
            proxy_cmd = shlex.join(["ssh", *popts, "-W", "%h:%p", _ssh_host(conn.proxy.host)])
            opts += ["-o", f"ProxyCommand={proxy_cmd.replace('%', '%%').replace('%%h:%%p', '%h:%p')}"]
        if to_log:
            opts = ["-E", str(log), *opts]
        return opts, env

    def _dial(self, conn: Connection, run_once: Callable[[Path], subprocess.CompletedProcess[bytes]]) -> Exec:
        """Run once per dial until the client authenticates, like pulumi-command's dial retry."""
        dials = 0
        delay = 0.5
        start = time.monotonic()
        with self._lock:
            self._cpu[threading.get_ident()] = 0.0
        while True:
            dials += 1
            log = self._log_path()
            try:
                r = run_once(log)
            finally:
                text = log.read_text(errors="replace") if log.exists() else ""
                log.unlink(missing_ok=True)
            # the node's own line (a proxy's client logs its own "Authenticated to <proxy>")
            authenticated = f"Authenticated to {conn.host} " in text
            if r.returncode != 255 or authenticated:
                return Exec(
                    r.returncode,
                    r.stdout.decode(errors="replace"),
                    r.stderr.decode(errors="replace"),
                    dials,
                    time.monotonic() - start,
                    self._cpu.pop(threading.get_ident(), 0.0),
                )
            pinned = conn.host_key or (conn.proxy is not None and conn.proxy.host_key)
            if pinned and any(s in text for s in _HOST_KEY_FAILURES):
                raise HostKeyMismatch(
                    f"host key of {conn.label} does not match the pinned hostKey: connection refused, "
                    f"nothing run ({_log_errors(text)})"
                )
            limit = conn.dial_error_limit
            if limit > -1 and dials > limit:
                raise DialError(f"dial {conn.label}: after {dials} failed attempts: {_log_errors(text)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)

    def _run(self, argv: list[str], env: dict[str, str], stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
        proc = _Measured(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            start_new_session=True,  # no controlling tty: SSH_ASKPASS, never a prompt
        )
        with proc:
            try:
                out, err = proc.communicate(stdin if stdin is not None else b"", timeout=self.command_timeout)
            except subprocess.TimeoutExpired as e:
                proc.kill()
                proc.communicate()
                raise StepFailed(f"no answer within {self.command_timeout}s") from e
        with self._lock:
            self._cpu[threading.get_ident()] = self._cpu.get(threading.get_ident(), 0.0) + proc.cpu
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def exec(self, conn: Connection, command: str, stdin: str | None) -> Exec:
        """One connection, one session: `command` as the exec request, `stdin` fed."""
        data = stdin.encode() if stdin else None

        def once(log: Path) -> subprocess.CompletedProcess[bytes]:
            opts, env = self.options(conn, log)
            return self._run(["ssh", *opts, "-T", _ssh_host(conn.host), command], env, data)

        return self._dial(conn, once)

    def upload(self, conn: Connection, local: Path, remote_path: str, contents: bool = False) -> Exec:
        """One SFTP session: a file to `remote_path`, or a directory recursively, as
        pulumi-command copies a FileAsset or a FileArchive of a directory: to
        `remote_path/<its name>`, or with CONTENTS (a path ending in "/") into `remote_path`
        itself; missing parent directories are created (v1.2.1)."""
        dest = PurePosixPath(remote_path)
        if local.is_dir():
            top = dest if contents else dest / local.name
            entries = sorted(local.rglob("*"))
            dirs = [top, *(top / p.relative_to(local).as_posix() for p in entries if p.is_dir())]
            puts = [(p, top / p.relative_to(local).as_posix()) for p in entries if p.is_file()]
        else:
            dirs, puts = [], [(local, dest)]
        parents = [str(p) for p in reversed(dest.parents) if str(p) != "/"] + [str(dest)] * bool(dirs)
        for p in [str(local), *parents, *map(str, dirs), *(str(d) for _, d in puts)]:
            if any(c in p for c in '"\\\n'):
                raise StepFailed(f"path not supported by the driver's sftp batch: {p!r}")
        batch = "".join(f'-mkdir "{p}"\n' for p in [*parents, *map(str, dirs)])
        batch += "".join(f'put "{src}" "{dst}"\n' for src, dst in puts)

        def once(log: Path) -> subprocess.CompletedProcess[bytes]:
            opts, env = self.options(conn, log, to_log=False)
            env["AIP_SSH_LOG"] = str(log)
            argv = ["sftp", "-b", "-", "-S", str(self._wrapper), *opts, _sftp_host(conn.host)]
            return self._run(argv, env, batch.encode())

        return self._dial(conn, once)


def _ssh_host(host: str) -> str:
    return host


def _sftp_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# ------------------------------------------------------------------ state


class State:
    """The driver's record of what exists (like the engine's checkpoint). JSON, mode 0600."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.resources: dict[str, dict[str, Any]] = {}
        if path.exists():
            doc = json.loads(path.read_text())
            if doc.get("version") != STATE_VERSION:
                raise DriverError(f"{path}: state version {doc.get('version')}, expected {STATE_VERSION}")
            self.resources = doc["resources"]

    def put(self, key: str, entry: dict[str, Any]) -> None:
        with self._lock:
            if self.resources.get(key) == entry:
                return  # a same step: the file is not rewritten (at 1+32, 165 rewrites of 2 MB took 6.7 s)
            self.resources[key] = entry
            self._save()

    def drop(self, key: str) -> None:
        with self._lock:
            self.resources.pop(key, None)
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"version": STATE_VERSION, "resources": self.resources}, f, indent=1, sort_keys=True)
        tmp.replace(self.path)


# ------------------------------------------------------------------ engine


@dataclass
class Action:
    """One step that needed the node: create, update, replace or delete of a resource."""

    op: str
    key: str
    name: str
    type: str
    where: str
    started: float  # time.time()
    seconds: float = 0.0
    ok: bool = True
    sessions: int = 0  # SSH sessions opened (0: nothing to run, e.g. a CopyToRemote with the same file)
    sent: int = 0  # bytes handed to the SSH client: command line and stdin, or the uploaded file
    client_cpu: float = 0.0  # CPU seconds of the ssh/sftp client processes (the provisioner's)
    thread_cpu: float = 0.0  # CPU seconds of the driver's own thread for this step
    error: str = ""
    stdout: str = ""
    stderr: str = ""


@dataclass
class Result:
    actions: list[Action] = field(default_factory=list)
    kubeconfig: str | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # resource name → stdout, stderr
    seconds: float = 0.0
    plan: Plan | None = None

    def ran(self, op: str | None = None, type: str | None = None) -> list[str]:
        """Names of the resources that opened an SSH session (optionally one op / type)."""
        return sorted(
            a.name
            for a in self.actions
            if a.sessions and (op is None or a.op == op) and (type is None or a.type == type)
        )

    def ops(self) -> dict[str, str]:
        """resource name → op, for every step that opened an SSH session."""
        return {a.name: a.op for a in sorted(self.actions, key=lambda a: a.started) if a.sessions}


class Driver:
    """`Driver(state_path).up(raw_config)` / `.destroy()`; see the module docstring."""

    def __init__(
        self,
        state_path: Path,
        *,
        stack: str = "hosts",
        project_dir: Path = ROOT,
        parallel: int = 64,
        hook: Hook | None = None,
        command_timeout: float = 900,
    ):
        self.state = State(Path(state_path))
        self.stack = stack
        self.project_dir = project_dir
        self.parallel = parallel
        self.hook = hook
        self._workdir = Path(tempfile.mkdtemp(prefix="aip-driver-"))
        os.chmod(self._workdir, 0o700)
        self.ssh = Ssh(self._workdir, command_timeout)
        self._actions_lock = threading.Lock()

    def close(self) -> None:
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- planning -------------------------------------------------------------------

    def plan(self, raw_config: Mapping[str, Any]) -> Plan:
        return build_plan(raw_config, self.stack, self.project_dir)

    def changes(self, plan: Plan, force_update: bool = False) -> dict[str, str]:
        """key → create | update | replace | same | delete, against the state."""
        out = {key: self._op(res, self.state.resources.get(key), force_update) for key, res in plan.resources.items()}
        for key in self.state.resources:
            if key not in plan.resources:
                out[key] = "delete"
        return out

    @staticmethod
    def _op(res: Resource, old: Mapping[str, Any] | None, force: bool) -> str:
        if old is None:
            return "create"
        if old["type"] != res.type or old["inputs"].get("triggers") != res.inputs.get("triggers"):
            return "replace"
        if force or old["inputs"] != res.inputs:
            return "update"
        return "same"

    # -- up / destroy -------------------------------------------------------------------

    def up(self, raw_config: Mapping[str, Any], *, force_update: bool = False, plan: Plan | None = None) -> Result:
        """Bring the hosts to RAW_CONFIG's plan (PLAN: that plan, already built from it)."""
        t0 = time.monotonic()
        plan = plan if plan is not None else self.plan(raw_config)
        result = Result(plan=plan)
        changes = self.changes(plan, force_update)

        def work(key: str) -> None:
            op = changes[key]
            if op != "same":
                self._apply(op, plan.resources[key], self.state.resources.get(key), result)
            else:  # like the engine's same step: nothing runs, the new dependencies are recorded
                old = self.state.resources[key]
                self.state.put(key, plan.resources[key].as_state(old.get("outputs") or {}))

        graph = {key: set(res.dependencies) for key, res in plan.resources.items()}
        failures = self._run_graph(graph, work)
        if not failures:  # the engine deletes what is no longer declared after the rest of the update
            failures = self._delete_all([k for k, op in changes.items() if op == "delete"], result)
        self._finish(result, plan, t0)
        if failures:
            raise DriverError(_failure_message("update", failures), result)
        return result

    def destroy(self) -> Result:
        t0 = time.monotonic()
        result = Result()
        failures = self._delete_all(list(self.state.resources), result)
        self._finish(result, None, t0)
        if failures:
            raise DriverError(_failure_message("destroy", failures), result)
        return result

    def _finish(self, result: Result, plan: Plan | None, t0: float) -> None:
        result.actions.sort(key=lambda a: a.started)
        result.outputs = {e["name"]: dict(e.get("outputs") or {}) for e in self.state.resources.values()}
        names = [r.name for r in (plan.resources.values() if plan else []) if r.type == COMMAND]
        kube = [n for n in names if n.endswith("-kubeconfig")]
        if len(kube) == 1 and kube[0] in result.outputs:
            result.kubeconfig = result.outputs[kube[0]].get("stdout")
        result.seconds = time.monotonic() - t0

    def _delete_all(self, keys: list[str], result: Result) -> list[StepFailed]:
        entries = {k: self.state.resources[k] for k in keys}
        # delete X only after every resource being deleted that depends on X
        graph: dict[str, set[str]] = {k: set() for k in entries}
        for k, e in entries.items():
            for dep in e.get("dependencies") or ():
                if dep in graph:
                    graph[dep].add(k)

        def work(key: str) -> None:
            self._apply("delete", None, entries[key], result)

        return self._run_graph(graph, work)

    def _run_graph(self, graph: Mapping[str, set[str]], work: Callable[[str], None]) -> list[StepFailed]:
        """Run `work(key)` once its dependencies are done; concurrently; stop starting on a failure."""
        pending = {k: {d for d in deps if d in graph} for k, deps in graph.items()}
        done: set[str] = set()
        failures: list[StepFailed] = []
        running: dict[cf.Future[None], str] = {}
        with cf.ThreadPoolExecutor(max_workers=self.parallel) as pool:
            while True:
                if not failures:
                    for key in sorted(k for k, deps in pending.items() if deps <= done):
                        del pending[key]
                        running[pool.submit(work, key)] = key
                if not running:
                    break
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    key = running.pop(fut)
                    err = fut.exception()
                    if err is None:
                        done.add(key)
                    elif isinstance(err, StepFailed):
                        failures.append(err)
                    else:
                        failures.append(StepFailed(f"{key}: {type(err).__name__}: {err}"))
        if pending and not failures:
            failures.append(StepFailed(f"dependency cycle among {sorted(pending)}"))
        return failures

    # -- one resource -------------------------------------------------------------------

    def _apply(self, op: str, new: Resource | None, old_entry: Mapping[str, Any] | None, result: Result) -> None:
        old = Resource.from_state(old_entry) if old_entry is not None else None
        res = new or old
        assert res is not None
        conn = res.connection
        action = Action(op=op, key=res.key, name=res.name, type=res.type, where=conn.label, started=time.time())
        if self.hook:
            self.hook("start", op, res)
        t0 = time.monotonic()
        cpu0 = time.thread_time()
        try:
            outputs: dict[str, str] = {}
            if op == "create":
                assert new is not None
                outputs = self._create(new, action)
            elif op == "update":
                assert new is not None and old is not None and old_entry is not None
                outputs = self._update(new, old, dict(old_entry.get("outputs") or {}), action)
            elif op == "replace":
                assert new is not None and old is not None
                if new.delete_before_replace:
                    self._delete(old, action)
                    self.state.drop(old.key)
                    outputs = self._create(new, action)
                else:
                    outputs = self._create(new, action)
                    self._delete(old, action)
            elif op == "delete":
                assert old is not None
                self._delete(old, action)
                self.state.drop(old.key)
            if new is not None:
                self.state.put(new.key, new.as_state(outputs))
        except StepFailed as e:
            action.ok = False
            action.error = str(e)
            raise StepFailed(f"{res.name} ({res.type}, {op}) on {conn.label}: {e}") from None
        finally:
            action.seconds = time.monotonic() - t0
            action.thread_cpu = time.thread_time() - cpu0
            with self._actions_lock:
                result.actions.append(action)
            if self.hook:
                self.hook("end", op, res)

    def _run_command(self, res: Resource, text: str | None, action: Action) -> dict[str, str]:
        if not text:
            return {"stdout": "", "stderr": ""}
        stdin = res.inputs.get("stdin")
        r = self.ssh.exec(res.connection, text, stdin)
        action.sessions += 1
        action.client_cpu += r.cpu
        action.sent += len(text.encode()) + len((stdin or "").encode())
        action.stdout, action.stderr = r.stdout, r.stderr
        if r.rc != 0:
            tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-40:])  # pulumi-command shows it all
            raise StepFailed(f"exit status {r.rc}:\n{tail}")
        return {"stdout": r.stdout.removesuffix("\n"), "stderr": r.stderr.removesuffix("\n")}

    def _upload(self, res: Resource, action: Action) -> dict[str, str]:
        source = res.inputs["source"]
        asset = source.get("asset") or source.get("archive") or {}
        if "path" not in asset:
            raise StepFailed("the driver uploads file assets and directories only")
        local = Path(asset["path"])
        r = self.ssh.upload(res.connection, local, res.inputs["remotePath"], contents=asset["path"].endswith("/"))
        action.sessions += 1
        action.client_cpu += r.cpu
        action.sent += (
            sum(p.stat().st_size for p in local.rglob("*") if p.is_file()) if local.is_dir() else local.stat().st_size
        )
        if r.rc != 0:
            raise StepFailed(f"sftp exit status {r.rc}: {r.stderr.strip()[-500:]}")
        return {}

    def _create(self, res: Resource, action: Action) -> dict[str, str]:
        if res.type == COPY:
            return self._upload(res, action)
        return self._run_command(res, res.inputs.get("create"), action)

    def _update(self, new: Resource, old: Resource, outputs: dict[str, str], action: Action) -> dict[str, str]:
        if new.type == COPY:  # pulumi-command copies again only when the file or the path changed
            same = new.inputs["source"] == old.inputs["source"] and new.inputs["remotePath"] == old.inputs["remotePath"]
            return outputs if same else self._upload(new, action)
        return self._run_command(new, new.inputs.get("update") or new.inputs.get("create"), action)

    def _delete(self, old: Resource, action: Action) -> None:
        if old.type == COMMAND:  # a CopyToRemote's delete does nothing on the node
            self._run_command(old, old.inputs.get("delete"), action)


def _failure_message(what: str, failures: Iterable[StepFailed]) -> str:
    lines = [f"{what} failed:"]
    lines += [f"  - {f}" for f in failures]
    return "\n".join(lines)
