"""The real Pulumi engine, hermetic: the built CLI, Python language host and Kubernetes provider.

    env = EngineEnv.create()                       # builds what is missing (scripts/tools.sh)
    ws = Workspace(env, tmp_dir, stack="engine")   # file:// backend + project dir in tmp_dir
    ws.pulumi("preview", "--diff")

What makes it hermetic (docs/engine.md):
- PULUMI_HOME is ~/.cache/ai-platform/pulumi-home-<cli version>, holding only the
  Kubernetes provider built here, installed with
  `pulumi plugin install resource kubernetes 4.34.2 --file <built binary>`. Its code is the
  January 2026 commit of pulumi-kubernetes (provider/v4 v4.0.0-20260115033456-f47bc2d6f199),
  stamped 4.34.2 so the pinned SDK (pulumi-kubernetes==4.34.2) asks for it — it is NOT the
  4.34.2 release;
- PULUMI_SKIP_UPDATE_CHECK, PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: nothing is
  downloaded, a missing plugin is an error;
- a `file://` backend inside the caller's temporary directory, PULUMI_CONFIG_PASSPHRASE;
- the Python language host (sdk/v3 v3.79.0, the newest that still contains it) on PATH
  with PULUMI_PYTHON_CMD set to the project venv's python: that host ignores the
  project's `virtualenv` option.

`pulumi()` is the same function `scripts/preview.sh` relies on through `env_for_shell()`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "scripts" / "tools.sh"
CACHE = Path(os.environ.get("AIP_CACHE", Path.home() / ".cache" / "ai-platform"))
PROVIDER_VERSION = "4.34.2"  # what the pinned SDK asks for; the code is the January 2026 commit
PROVIDER_CODE = (
    "pulumi-kubernetes provider/v4 v4.0.0-20260115033456-f47bc2d6f199 (January 2026 commit, not the 4.34.2 release)"
)
PASSPHRASE = "aip-engine-test-passphrase"  # only encrypts the test's own throw-away state


def tool(name: str) -> Path:
    """A pinned tool's path (scripts/tools.sh builds it if missing, waits on another build)."""
    out = subprocess.run([str(TOOLS), name], check=True, stdout=subprocess.PIPE, text=True)
    path = Path(out.stdout.strip().splitlines()[-1])
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"scripts/tools.sh {name} gave {path}, which is not executable")
    return path


def build_record(binary: Path) -> str:
    """The `.complete` line of the tool group that built BINARY (build time and date)."""
    f = binary.parent / ".complete"
    return f.read_text().strip() if f.is_file() else "(no .complete record)"


def _side_by_side(bin_dir: Path, binary: Path) -> Path:
    """BINARY hard-linked into BIN_DIR (copied where a link cannot be made); kept current."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = bin_dir / binary.name
    if target.exists():
        a, b = target.stat(), binary.stat()
        if a.st_ino == b.st_ino or (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns):
            return target
    tmp = bin_dir / f".{binary.name}.{os.getpid()}"
    try:
        os.link(binary, tmp)
    except OSError:
        shutil.copy2(binary, tmp)
    os.replace(tmp, target)
    return target


@dataclass(frozen=True)
class EngineEnv:
    pulumi: Path
    language_host: Path
    provider: Path
    home: Path
    python: Path
    # where each tool was built (its group's directory holds the `.complete` record)
    built: tuple[Path, ...] = ()

    @classmethod
    def create(cls, python: Path | None = None) -> EngineEnv:
        cli = tool("pulumi")
        host = tool("pulumi-language-python")
        tool("pulumi-language-python-exec")
        provider = tool("pulumi-resource-kubernetes")
        version = cli.parent.name.removeprefix("pulumi-")  # pulumi-v3.274.1
        home = CACHE / f"pulumi-home-{version}"
        # The CLI looks for its language hosts beside its own binary first, and warns on every
        # run when it takes one from $PATH instead: put the three side by side (hard links).
        bin_dir = home / "bin"
        exec_ = host.with_name("pulumi-language-python-exec")
        linked = [_side_by_side(bin_dir, p) for p in (cli, host, exec_)]
        env = cls(linked[0], linked[1], provider, home, python or Path(sys.executable), (cli, host, provider))
        env._install_provider()
        return env

    def base_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "KUBE"))}
        path = os.pathsep.join(
            [str(self.language_host.parent), str(self.pulumi.parent), str(self.python.parent), keep.get("PATH", "")]
        )
        return {
            **keep,
            "PATH": path,
            "PULUMI_HOME": str(self.home),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_PYTHON_CMD": str(self.python),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            # nothing reaches ~/.kube/config by accident (the program disables default providers too)
            "KUBECONFIG": os.devnull,
        }

    def _install_provider(self) -> None:
        """Install the built provider into PULUMI_HOME once per build (a lock for parallel runs)."""
        self.home.mkdir(parents=True, exist_ok=True)
        marker = self.home / ".kubernetes-provider"
        want = f"{self.provider} {self.provider.stat().st_size} {build_record(self.provider)}\n"
        with (self.home / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if marker.is_file() and marker.read_text() == want:
                return
            subprocess.run(
                [str(self.pulumi), "plugin", "install", "resource", "kubernetes", PROVIDER_VERSION,
                 "--file", str(self.provider), "--reinstall"],
                check=True, env=self.base_env(), capture_output=True, text=True,
            )  # fmt: skip
            marker.write_text(want)

    def plugins(self) -> list[dict[str, Any]]:
        out = subprocess.run(
            [str(self.pulumi), "plugin", "ls", "--json"],
            check=True,
            env=self.base_env(),
            capture_output=True,
            text=True,
        )
        result: list[dict[str, Any]] = json.loads(out.stdout or "[]")
        return result

    def describe(self) -> str:
        cli, host, provider = self.built or (self.pulumi, self.language_host, self.provider)
        return "\n".join(
            [
                f"pulumi CLI: {cli} ({build_record(cli)})",
                f"language host: {host} ({build_record(host)})",
                f"kubernetes provider {PROVIDER_VERSION}: {PROVIDER_CODE}; {provider} ({build_record(provider)})",
                f"PULUMI_HOME: {self.home} (CLI and language host hard-linked into its bin/)",
            ]
        )


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def ok(self) -> Result:
        if self.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(self.args)} exited {self.returncode}\n--- stdout\n{self.stdout[-20000:]}"
                f"\n--- stderr\n{self.stderr[-8000:]}"
            )
        return self


@dataclass
class Workspace:
    """One project + stack under the real engine, everything inside DIR.

    The project directory holds Pulumi.yaml and links to the program (`__main__.py` and the
    top-level packages: `components/`, `config/`, `stacks/`), so the stack file, the state and any Pulumi.<stack>.yaml the
    CLI writes stay out of the checkout.
    """

    env: EngineEnv
    dir: Path
    stack: str
    project: Path = field(init=False)
    backend: Path = field(init=False)

    def __post_init__(self) -> None:
        self.project = self.dir / "project"
        self.backend = self.dir / "state"
        self.project.mkdir(parents=True, exist_ok=True)
        self.backend.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "Pulumi.yaml", self.project / "Pulumi.yaml")
        # the program: __main__.py and every top-level package it may import (not tests/)
        packages = [p.name for p in REPO.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"]
        for name in ("__main__.py", *sorted(packages)):
            link = self.project / name
            if not link.exists():
                link.symlink_to(REPO / name)

    @property
    def stack_file(self) -> Path:
        return self.project / f"Pulumi.{self.stack}.yaml"

    def environ(self) -> dict[str, str]:
        return {**self.env.base_env(), "PULUMI_BACKEND_URL": f"file://{self.backend}"}

    def pulumi(self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 1800) -> Result:
        argv = [*args]
        if args and args[0] not in ("login", "plugin", "version", "about"):
            at = argv.index("--") if "--" in argv else len(argv)
            argv[at:at] = ["--stack", self.stack, "--non-interactive"]
        t0 = time.monotonic()
        proc = subprocess.run(
            [str(self.env.pulumi), *argv],
            cwd=self.project,
            env=self.environ(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        res = Result(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)
        return res.ok() if check else res

    def init(self, plain_config: dict[str, Any], secrets: dict[str, str]) -> None:
        """Create the stack: plain config written as the stack file, each secret set with
        `pulumi config set --secret --path` (encrypted by the passphrase provider)."""
        import yaml

        self.pulumi("stack", "init", "--secrets-provider", "passphrase")
        doc = yaml.safe_load(self.stack_file.read_text()) if self.stack_file.is_file() else {}
        doc = doc or {}
        doc["config"] = plain_config
        self.stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        for path, value in secrets.items():
            # on stdin, not the command line (which other processes can read)
            self.pulumi("config", "set", "--secret", "--path", path, stdin=value)


def main(argv: list[str]) -> int:
    """`python -m tests.engine.engine env`: the hermetic environment as shell assignments
    (scripts/preview.sh evaluates them when no Pulumi CLI is installed)."""
    import shlex

    if argv[1:] != ["env"]:
        print("usage: python -m tests.engine.engine env", file=sys.stderr)
        return 2
    env = EngineEnv.create()
    print(env.describe().replace("\n", "\n# ").join(["# ", ""]), file=sys.stderr)
    base = env.base_env()
    for key in ("PATH", "PULUMI_HOME", "PULUMI_SKIP_UPDATE_CHECK", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
                "PULUMI_PYTHON_CMD"):  # fmt: skip
        print(f"export {key}={shlex.quote(base[key])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
