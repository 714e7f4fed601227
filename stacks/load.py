"""Load the `ai-platform:` config namespace and validate it once.

Two sources, one validation:
- `from_pulumi()` reads the config the Pulumi engine hands the program (or the mock
  runtime hands it under `make plan` and the tests);
- `from_stack_file()` reads `Pulumi.<stack>.yaml` directly, for `python -m stacks check`
  and the offline plan. Encrypted `secure:` values cannot be decrypted there: they are
  accepted as present, and must sit on a secret field.

Either way the result is a `StackConfig`, or a `ConfigError` listing every problem with
its key path as written in the stack file (`ai-platform:cluster.servers[1].host`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from stacks.model import StackConfig, cross_field_problems

NAMESPACE = "ai-platform"
# What an encrypted value reads as when it cannot be decrypted (offline check and plan).
ENCRYPTED_PLACEHOLDER = "[encrypted]"


@dataclass(frozen=True)
class Problem:
    path: str  # without the namespace: "cluster.servers[1].host"
    message: str

    def __str__(self) -> str:
        return f"{NAMESPACE}:{self.path}: {self.message}"


class ConfigError(Exception):
    """The stack config is invalid; `problems` lists every one of them."""

    def __init__(self, problems: list[Problem], source: str = "stack config") -> None:
        self.problems = problems
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        lines = [f"invalid {self.source}: {n} problem{'s' if n != 1 else ''}"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class Loaded:
    config: StackConfig
    # Key paths whose value was `secure:` in the stack file (file source only).
    encrypted_paths: frozenset[str]


def _fmt_key(key: str | int) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    if all(c.isalnum() or c in "-_" for c in key):
        return f".{key}"
    return f'["{key}"]'


def format_loc(loc: Iterable[str | int]) -> str:
    out = "".join(_fmt_key(k) for k in loc)
    return out[1:] if out.startswith(".") else out


def _problems_from_validation(err: ValidationError) -> list[Problem]:
    problems = []
    for e in err.errors():
        msg = e["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the config model; see docs/config.md)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        else:
            got = e.get("input")
            if isinstance(got, str | int | float | bool) and e["type"] not in ("value_error",):
                msg = f"{msg} (got {got!r})"
        loc = list(e["loc"])
        if loc and loc[-1] == "[key]":  # a mapping key that is not allowed: name the key itself
            loc.pop()
        path = format_loc(loc) or "(root)"
        problems.append(Problem(path, msg))
    return problems


def validate(
    raw: dict[str, Any], base_dir: Path, encrypted: Iterable[str] = (), source: str = "stack config"
) -> Loaded:
    """Validate the raw namespace (top-level key → value). Raises ConfigError."""
    try:
        cfg = StackConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_problems_from_validation(err), source) from None
    problems = [Problem(path, msg) for path, msg in cross_field_problems(cfg, base_dir)]
    enc = frozenset(encrypted)
    for path in sorted(enc):
        value = _lookup(cfg.model_dump(by_alias=True), path)
        if not isinstance(value, SecretStr):
            problems.append(
                Problem(
                    path, "is encrypted (secure:) but is not a secret field: it would reach resources in plain text"
                )
            )
    if problems:
        raise ConfigError(problems, source)
    return Loaded(cfg, enc)


def _lookup(tree: Any, path: str) -> Any:
    """Follow a rendered key path (a.b[0]["c.d"]) through dumped config."""
    node = tree
    for key in _parse_path(path):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _parse_path(path: str) -> list[str | int]:
    keys: list[str | int] = []
    i = 0
    buf = ""
    while i < len(path):
        c = path[i]
        if c == ".":
            if buf:
                keys.append(buf)
            buf = ""
        elif c == "[":
            if buf:
                keys.append(buf)
            buf = ""
            end = path.index("]", i)
            inner = path[i + 1 : end]
            keys.append(inner.strip('"') if inner.startswith('"') else int(inner))
            i = end
        else:
            buf += c
        i += 1
    if buf:
        keys.append(buf)
    return keys


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------


def _strip_secure(value: Any, path: list[str | int], found: list[str]) -> Any:
    """Replace `{secure: ...}` leaves by a placeholder, recording their paths."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            found.append(format_loc(path))
            return ENCRYPTED_PLACEHOLDER
        return {k: _strip_secure(v, [*path, k], found) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_secure(v, [*path, i], found) for i, v in enumerate(value)]
    return value


def read_stack_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The `ai-platform:` keys of a stack file, with encrypted leaves as placeholders."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("(file)", f"{path}: not valid YAML: {exc}")], str(path)) from None
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError([Problem("(file)", f"{path}: `config:` must be a mapping")], str(path))
    raw: dict[str, Any] = {}
    encrypted: list[str] = []
    for key, value in config.items():
        ns, _, name = str(key).partition(":")
        if ns != NAMESPACE or not name:
            continue  # other providers' keys (kubernetes:..., pulumi:...) are not ours
        raw[name] = _strip_secure(value, [name], encrypted)
    return raw, encrypted


def from_stack_file(path: Path) -> Loaded:
    raw, encrypted = read_stack_file(path)
    return validate(raw, path.resolve().parent, encrypted, source=str(path.name))


def read_pulumi_config() -> dict[str, Any]:
    """The `ai-platform:` keys the engine (or mock runtime) hands the program."""
    from pulumi.runtime import config as rc

    keys = set(rc.CONFIG.get()) | set(rc.get_config_env())
    raw: dict[str, Any] = {}
    for full in sorted(keys):
        ns, _, name = full.partition(":")
        if ns != NAMESPACE or not name:
            continue
        value = rc.get_config(full)
        if isinstance(value, str):
            try:
                # Structured values arrive JSON-encoded; plain strings stay strings.
                decoded = json.loads(value)
                if isinstance(decoded, dict | list | bool | int | float):
                    value = decoded
            except ValueError:
                pass
        raw[name] = value
    return raw


def from_pulumi(base_dir: Path | None = None) -> Loaded:
    return validate(read_pulumi_config(), base_dir or Path.cwd(), source="stack config")
