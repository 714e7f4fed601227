"""Files the stack names on the provisioner: one model of where each comes from.

The airgap bundle, CA/cert/key files, SSH key files, local charts and manifests are inputs
of `pulumi up`, not of a review. Every such config field is a `ProvisionerPath`; this module
finds the ones in use, and is the one place that resolves, checks and reads them:
- under the engine (`pulumi preview` / `pulumi up`) an absent file is a config problem,
  reported with its key before anything is registered;
- in a review (`make plan`, `make plan-diff`, `stacks check` without --strict) an absent
  file is recorded as "absent here — required at pulumi up", and what the program would
  read from it is a placeholder saying so. A present file is recorded with its size and
  sha256, so replacing the bundle shows in a plan diff as exactly that.
"""

from __future__ import annotations

import contextvars
import fnmatch
import hashlib
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from config.fields import PROVISIONER_FILE

ABSENT = "absent here — required at pulumi up"


@dataclass(frozen=True)
class FileFact:
    key: str  # config key path, e.g. cluster.k3s.airgap.binary
    given: str  # the path as the stack file writes it
    size: int | None = None  # None: absent
    sha256: str | None = None

    @property
    def present(self) -> bool:
        return self.size is not None

    def describe(self) -> str:
        if not self.present:
            return f"{self.key}: {self.given} — {ABSENT}"
        return f"{self.key}: {self.given} ({self.size} bytes, sha256 {self.sha256})"


@dataclass
class Review:
    """A review run's record of the provisioner's files (set by `make plan`)."""

    facts: dict[str, FileFact] = field(default_factory=dict)


# Set by the plan for the duration of a review run; None under the engine.
REVIEW: contextvars.ContextVar[Review | None] = contextvars.ContextVar("aip_review", default=None)


def _marked(annotation: Any) -> bool:
    """Whether ANNOTATION (possibly Optional[...]) carries the PROVISIONER_FILE marker."""
    if typing.get_origin(annotation) is typing.Annotated:
        return PROVISIONER_FILE in typing.get_args(annotation)[1:] or _marked(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_marked(a) for a in typing.get_args(annotation))
    return False


def _walk(model: BaseModel, prefix: str) -> Iterator[tuple[str, str]]:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}.{info.alias or name}"
        if value is None:
            continue
        if _marked(info.annotation) or PROVISIONER_FILE in info.metadata:
            yield key, value
        elif isinstance(value, list) and any(_marked(a) for a in typing.get_args(info.annotation)):
            yield from ((f"{key}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, BaseModel):
            yield from _walk(value, key)
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, BaseModel):
                    yield from _walk(v, f'{key}["{k}"]' if "." in k else f"{key}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, BaseModel):
                    yield from _walk(v, f"{key}[{i}]")


def in_use(cfg: Any) -> list[tuple[str, str]]:
    """(key, path) of every provisioner file the enabled parts of CFG (a StackConfig) use."""
    out: list[tuple[str, str]] = []
    cl = cfg.cluster
    if cl.kubeconfig is None:
        out += _walk(cl.ssh, "cluster.ssh")
        out += _walk(cl.k3s.registries, "cluster.k3s.registries")
        if cl.k3s.install == "airgap" and cl.k3s.airgap is not None:
            out += _walk(cl.k3s.airgap, "cluster.k3s.airgap")
        gpu = cl.gpu
        if any(n.gpu for n in [*cl.servers, *cl.agents]) and cl.k3s.install == "airgap" and gpu.driver == "install":
            out += _walk(gpu, "cluster.gpu")
    if cfg.storage.enabled:
        if cfg.storage.mode == "local-static":
            out += _walk(cfg.storage.local_static, "storage.localStatic")
        if cfg.storage.nfs is not None:
            out += _walk(cfg.storage.nfs, "storage.nfs")
    if cfg.knative.enabled and not cfg.csghub.enabled:
        out += _walk(cfg.knative.manifests, "knative.manifests")
    if cfg.csghub.enabled:
        out += _walk(cfg.csghub.chart, "csghub.chart")
    if cfg.dataflow.enabled and cfg.dataflow.standalone:
        out += _walk(cfg.dataflow.chart, "dataflow.chart")
    if cfg.octopus is not None and cfg.octopus.enabled:
        out += _walk(cfg.octopus.repo, "octopus.repo")
    if cfg.openhydra.enabled:
        out += _walk(cfg.openhydra.manifests, "openhydra.manifests")
    return out


def resolve(base_dir: Path, given: str) -> Path:
    p = Path(given).expanduser()
    return p if p.is_absolute() else base_dir / p


def fact(base_dir: Path, key: str, given: str) -> FileFact:
    try:
        return _fact(base_dir, key, given)
    except OSError:  # unreadable: as good as absent for the plan, a problem for pulumi up
        return FileFact(key, given)


def _fact(base_dir: Path, key: str, given: str) -> FileFact:
    path = resolve(base_dir, given)
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return FileFact(key, given, path.stat().st_size, h.hexdigest())
    if path.is_dir():  # a chart directory: its files' digests, in order
        h = hashlib.sha256()
        size = 0
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            data = p.read_bytes()
            size += len(data)
            h.update(str(p.relative_to(path)).encode() + b"\0" + hashlib.sha256(data).digest())
        return FileFact(key, given, size, h.hexdigest())
    return FileFact(key, given)


# The images tarball in an airgap bundle directory.
AIRGAP_IMAGES_GLOB = "k3s-airgap-images-*"


def airgap_dir_problem(path: Path) -> str | None:
    """Why the directory at PATH is not a K3s airgap bundle as `cluster.k3s.airgap.dir` wants it
    (`k3s`, `install.sh`, one images tarball, nothing else: all of it goes to every node)."""
    if not path.is_dir():
        return f"is not a directory: {path}"
    names = sorted(p.name for p in path.iterdir())
    images = [n for n in names if fnmatch.fnmatchcase(n, AIRGAP_IMAGES_GLOB)]
    wrong = [n for n in ("k3s", "install.sh", *images) if n in names and not (path / n).is_file()]
    if wrong:
        return f"{path}: not a file: {', '.join(wrong)}"
    missing = [n for n in ("k3s", "install.sh") if n not in names]
    if missing or len(images) != 1:
        lacks = f"missing {', '.join(missing)}; " if missing else ""
        return (
            f"{path} must hold k3s, install.sh and exactly one {AIRGAP_IMAGES_GLOB} tarball: "
            f"{lacks}images tarballs found: {', '.join(images) or 'none'}"
        )
    extra = [n for n in names if n not in ("k3s", "install.sh", *images)]
    if extra:
        return f"{path} holds more than the bundle (all of it would go to every node): {', '.join(extra)}"
    return None


def airgap_images_name(base_dir: Path, key: str, given: str) -> str:
    """The images tarball's name in the bundle directory GIVEN (checked by airgap_dir_problem
    before the program runs); in a review with the directory absent, a placeholder naming it."""
    path = resolve(base_dir, given)
    if not path.is_dir() and REVIEW.get() is not None:
        return f"<{key}: {given} {ABSENT}>"
    return sorted(p.name for p in path.iterdir() if fnmatch.fnmatchcase(p.name, AIRGAP_IMAGES_GLOB))[0]


# What a present file at a key must also be, beyond being there.
CONTENTS: dict[str, Callable[[Path], str | None]] = {"cluster.k3s.airgap.dir": airgap_dir_problem}


def check(cfg: Any, base_dir: Path, review: bool | None = None) -> tuple[list[tuple[str, str]], list[FileFact]]:
    """(problems, facts): every provisioner file in use, and the absent ones as problems —
    unless this is a review (REVIEW set, or REVIEW=True), where absence is only recorded."""
    record = REVIEW.get()
    reviewing = record is not None if review is None else review
    problems = []
    facts = []
    for key, given in in_use(cfg):
        f = fact(base_dir, key, given)
        facts.append(f)
        if record is not None:
            record.facts[key] = f
        if not f.present and not reviewing:
            problems.append((key, f"file not found on the provisioner: {given}"))
        elif f.present and key in CONTENTS:  # present but wrong is wrong in a review too
            problem = CONTENTS[key](resolve(base_dir, given))
            if problem:
                problems.append((key, problem))
    return problems, facts


def reviewing() -> bool:
    return REVIEW.get() is not None


def present(base_dir: Path, given: str) -> bool:
    return resolve(base_dir, given).exists()


def read_text(base_dir: Path, key: str, given: str) -> str:
    """The file's text; in a review an absent file reads as a placeholder naming it."""
    path = resolve(base_dir, given)
    if not path.exists() and REVIEW.get() is not None:
        return f"<{key}: {given} {ABSENT}>"
    return path.read_text()
