"""Rules over declared resources, written once.

Adapters: the offline plan (`stacks/plan.py`, over what the mock runtime recorded) and
the pulumi-policy pack (`policy/`, over what the engine previews). A rule takes one
resource view, or the whole set for cross-resource rules, and returns messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from config.base import ENCRYPTED_PLACEHOLDER

SECRET = "[secret]"
# The seeds' documented default credentials: none may reach a value.
SEED_CREDENTIALS_ANYWHERE = ("Root@1234", "minioadmin", "OpenI2018", "KLtmMug9BDvvRjlg", "Pa22word")
SEED_CREDENTIALS_EXACT = ("openhydra", "root123", "admin123", "123456", "password")
# Values that only a secret can produce under the plan: config secrets read as a
# placeholder, generated ones as "plan-fake-...". Seen in plain text, a secret leaked.
SECRET_CANARIES = (ENCRYPTED_PLACEHOLDER, "plan-fake-")
# Scripts whose stdout is a secret.
SECRET_STDOUT_SCRIPTS = ("k3s-kubeconfig.sh",)
DATA_BEARING_TYPES = (
    "kubernetes:core/v1:PersistentVolume",
    "kubernetes:core/v1:PersistentVolumeClaim",
    "kubernetes:mysql.oracle.com/v2:InnoDBCluster",
)
DATA_BEARING_RELEASES = ("csghub", "dataflow", "octopus")
_VERSION = re.compile(r"v?\d+\.\d+\.\d+")
# A URL path segment that pins a manifest: a version tag (v0.1, knative-v1.21.0, 8.0.36-2.1.2) or a commit.
_PINNED_REF = re.compile(r"/([\w.-]*v?\d+(\.\d+)+[\w.+-]*|[0-9a-f]{40})/")


@dataclass(frozen=True)
class View:
    """What a rule sees of one resource (built from the plan or from a policy argument)."""

    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool = True
    provider: str | None = None
    protect: bool = False
    additional_secret_outputs: tuple[str, ...] = ()
    read: bool = False


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[View], Iterable[str]] | None = None
    check_all: Callable[[list[View]], Iterable[tuple[str, str]]] | None = field(default=None)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def no_seed_credentials(v: View) -> Iterable[str]:
    for path, leaf in leaves(v.inputs):
        if not isinstance(leaf, str):
            continue
        for cred in SEED_CREDENTIALS_ANYWHERE:
            if cred in leaf:
                yield f"{path} contains the seed default credential {cred!r}"
        if leaf in SEED_CREDENTIALS_EXACT and re.search(r"(?i)pass|secret|token|key", path):
            yield f"{path} is the seed default credential {leaf!r}"


def pinned_versions(v: View) -> Iterable[str]:
    if v.type == "kubernetes:helm.sh/v3:Release":
        chart = str(v.inputs.get("chart", ""))
        # a local chart (airgap) has no repository: it is pinned by being that file
        local = not v.inputs.get("repositoryOpts") or chart.startswith(("/", "./", "../")) or chart.endswith(".tgz")
        if not local and not _VERSION.fullmatch(str(v.inputs.get("version", ""))):
            yield f"chart {chart!r} has no pinned version (got {v.inputs.get('version')!r})"
    if v.type in ("kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml:ConfigFile"):
        file = str(v.inputs.get("file", ""))
        if file.startswith(("http://", "https://")) and not _PINNED_REF.search(file):
            yield f"manifest {file} is not pinned to a release tag or a commit"


def secret_outputs(v: View) -> Iterable[str]:
    if v.type != "command:remote:Command":
        return
    if v.inputs.get("stdin") == SECRET and "stdin" not in v.additional_secret_outputs:
        yield "stdin is a secret but not listed in additionalSecretOutputs"
    scripts = str(v.inputs.get("create", "")) + str(v.inputs.get("update", ""))
    if any(s in scripts for s in SECRET_STDOUT_SCRIPTS) and "stdout" not in v.additional_secret_outputs:
        yield "its stdout carries a secret but is not listed in additionalSecretOutputs"


def no_plain_secrets(v: View) -> Iterable[str]:
    for path, leaf in leaves(v.inputs):
        if isinstance(leaf, str) and any(c in leaf for c in SECRET_CANARIES):
            yield f"{path} carries a secret value in plain text"


def explicit_provider(v: View) -> Iterable[str]:
    if v.custom and v.type.startswith("kubernetes:") and not v.provider:
        yield "Kubernetes resource on the default provider (pass the cluster's provider)"


def protected_data(v: View) -> Iterable[str]:
    release_name = str(v.inputs.get("name") or v.name)
    data = v.type in DATA_BEARING_TYPES or (
        v.type == "kubernetes:helm.sh/v3:Release"
        and any(release_name == n or v.name.endswith(f"-{n}") for n in DATA_BEARING_RELEASES)
    )
    if data and not v.read and not v.protect:
        yield "holds data but is not protected (protect=True)"


def _node_ports(value: Any, path: str = "") -> Iterator[tuple[str, int]]:
    for p, leaf in leaves(value, path):
        last = p.rsplit(".", 1)[-1]
        parent = p.rsplit(".", 2)[-2] if p.count(".") >= 1 else ""
        if isinstance(leaf, int) and (last == "nodePort" or parent == "nodePorts") and 30000 <= leaf <= 32767:
            yield p, leaf


def unique_node_ports(views: list[View]) -> Iterable[tuple[str, str]]:
    owners: dict[int, str] = {}
    for v in views:
        for path, port in _node_ports(v.inputs):
            where = f"{v.type}::{v.name} {path}"
            if port in owners and not owners[port].startswith(f"{v.type}::{v.name} "):
                yield f"{v.type}::{v.name}", f"NodePort {port} at {path} is also used by {owners[port]}"
            owners.setdefault(port, where)


RULES: list[Rule] = [
    Rule("no-seed-credentials", "no seed default credential in any value", no_seed_credentials),
    Rule("pinned-versions", "every chart and manifest version pinned", pinned_versions),
    Rule("secret-outputs", "remote commands list secret stdin/stdout in additionalSecretOutputs", secret_outputs),
    Rule("no-plain-secrets", "no secret value reaches an input that is not secret", no_plain_secrets),
    Rule("explicit-provider", "no Kubernetes resource on a default provider", explicit_provider),
    Rule("protected-data", "PVs, PVCs, database releases and the CSGHub release are protected", protected_data),
    Rule("unique-node-ports", "no NodePort used twice", check_all=unique_node_ports),
]


def check_views(views: list[View]) -> list[Violation]:
    out: list[Violation] = []
    for rule in RULES:
        if rule.check is not None:
            for v in views:
                out += [Violation(rule.name, f"{v.type}::{v.name}", m) for m in rule.check(v)]
        if rule.check_all is not None:
            out += [Violation(rule.name, res, m) for res, m in rule.check_all(views)]
    return out


def check(rec: Any) -> list[Violation]:
    """Rules over a mockrun.Recording."""
    views = [
        View(
            type=d.type,
            name=d.name,
            inputs=d.inputs,
            custom=d.custom,
            provider=d.provider,
            protect=d.protect,
            additional_secret_outputs=tuple(d.additional_secret_outputs),
            read=d.read,
        )
        for d in rec.declared
    ]
    return check_views(views)
