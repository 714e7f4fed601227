"""Load the `ai-platform:` config namespace and validate it once: one code path for the
program under the engine, `python -m stacks check` and the offline plan.

Two sources, one validation:
- `from_pulumi()` reads the config the Pulumi engine hands the program (or the mock
  runtime hands it under `make plan` and the tests);
- `from_stack_file()` reads `Pulumi.<stack>.yaml` directly, for `python -m stacks check`
  and the plan. Encrypted `secure:` values cannot be decrypted there: they are accepted as
  present, and must sit on a secret field (or inside pass-through chart `values`).

Either way the raw namespace goes through `validate()`: the model, the cross-section
rules, the provisioner's files (config/files.py), then warnings (plain secrets). The result
is a `Loaded`, or a `ConfigError` listing every problem with its key path as written in
the stack file (`ai-platform:cluster.servers[1].host`). `strict=True` (CI's `stacks check
--strict`) turns every warning into a problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from config import files
from config.base import ENCRYPTED_PLACEHOLDER
from config.stack import StackConfig, cross_field_problems

NAMESPACE = "ai-platform"
# Config namespaces a stack file may use besides ours: the engine's and the providers'.
OTHER_NAMESPACES = ("pulumi", "kubernetes")
# Pass-through chart values: free-form, may hold `secure:` leaves.
PASS_THROUGH = ("values",)


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
    # Top-level keys whose value is (or holds) a secret: everything under them stays secret.
    secret_keys: frozenset[str]
    warnings: tuple[Problem, ...] = ()
    files: tuple[files.FileFact, ...] = ()


def _fmt_key(key: str | int) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    if key and all(c.isalnum() or c in "-_" for c in key):
        return f".{key}"
    return "[" + json.dumps(key) + "]"


def format_loc(loc: Iterable[str | int]) -> str:
    out = "".join(_fmt_key(k) for k in loc)
    return out[1:] if out.startswith(".") else out


def _secret_names(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Aliases of every secret field anywhere in MODEL (their inputs are never echoed)."""
    seen = seen if seen is not None else set()
    out: set[str] = set()
    if model in seen:
        return out
    seen.add(model)
    for name, info in model.model_fields.items():
        text = repr(info.annotation)
        if "SecretStr" in text:
            out.add(info.alias or name)
        for sub in _models_in(info.annotation):
            out |= _secret_names(sub, seen)
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    import typing

    found = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


SECRET_FIELDS = frozenset(_secret_names(StackConfig))


def _container_item(annotation: Any) -> Any | None:
    """The value type of a dict or list annotation (Optional unwrapped), else None."""
    import typing

    for a in [annotation, *typing.get_args(annotation)]:
        if typing.get_origin(a) in (dict, list):
            return typing.get_args(a)[-1]
    return None


def _is_secret_field(path: str) -> bool:
    """Whether PATH (a rendered key path) names a secret field of the model, or a leaf inside
    pass-through chart values (free-form: kept secret with them) — from the model's types."""
    annotation: Any = StackConfig
    for key in _parse_path(path):
        item = _container_item(annotation)
        if item is not None:  # a mapping key or a list index
            annotation = item
            continue
        models = _models_in(annotation)
        if not models or not isinstance(key, str):
            return False
        fields = {info.alias or n: info for n, info in models[0].model_fields.items()}
        info = fields.get(key)
        if info is None:
            return False
        if key in PASS_THROUGH:
            return True
        annotation = info.annotation
    return "SecretStr" in repr(annotation)


def _problems_from_validation(err: ValidationError) -> list[Problem]:
    problems = []
    for e in err.errors():
        msg = e["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        loc = list(e["loc"])
        if loc and loc[-1] == "[key]":  # a mapping key that is not allowed: name the key itself
            loc.pop()
        secret = any(isinstance(k, str) and k in SECRET_FIELDS for k in loc)
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the config model; see docs/config.md)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif not secret:
            got = e.get("input")
            if isinstance(got, str | int | float | bool) and e["type"] not in ("value_error",):
                shown = repr(got) if len(repr(got)) <= 80 else repr(got)[:77] + "..."
                msg = f"{msg} (got {shown})"
        path = format_loc(loc) or "(root)"
        problems.append(Problem(path, msg))
    return problems


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
            if path[i + 1] == '"':
                end = path.index('"]', i + 2)
                keys.append(json.loads(path[i + 1 : end + 1]))
                i = end + 1
            else:
                end = path.index("]", i)
                keys.append(int(path[i + 1 : end]))
                i = end
        else:
            buf += c
        i += 1
    if buf:
        keys.append(buf)
    return keys


def _plain_secrets(cfg: StackConfig, secret_keys: frozenset[str], encrypted: frozenset[str]) -> list[Problem]:
    """Secret fields given in plain text (not `secure:`, not under a secret config key)."""
    out = []

    def walk(model: BaseModel, prefix: str) -> None:
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            key = f"{prefix}.{info.alias or name}" if prefix else (info.alias or name)
            if isinstance(value, SecretStr):
                top = key.split(".")[0].split("[")[0]
                if key not in encrypted and top not in secret_keys:
                    out.append(
                        Problem(
                            key,
                            "a secret given in plain text: it would sit unencrypted in the stack file and in "
                            f"git; set it with `pulumi config set --secret --path '{NAMESPACE}:{key}'`",
                        )
                    )
            elif isinstance(value, BaseModel):
                walk(value, key)
            elif isinstance(value, list | dict):
                items = value.items() if isinstance(value, dict) else enumerate(value)
                for k, v in items:
                    if isinstance(v, BaseModel):
                        walk(v, f"{key}[{k}]" if isinstance(k, int) else f"{key}.{k}")

    walk(cfg, "")
    return out


def validate(
    raw: dict[str, Any],
    base_dir: Path,
    encrypted: Iterable[str] = (),
    source: str = "stack config",
    secret_keys: Iterable[str] = (),
    strict: bool = False,
    review: bool | None = None,
) -> Loaded:
    """Validate the raw namespace (top-level key → value). Raises ConfigError.

    REVIEW: absent provisioner files are recorded, not problems (default: whether a review
    run is in progress, config/files.py). STRICT: warnings are problems too."""
    problems = [
        Problem(key, "is null: remove the key, or set `enabled: false` to switch the layer off")
        for key, value in sorted(raw.items())
        if value is None
    ]
    enc = frozenset(encrypted)
    misplaced = sorted(p for p in enc if not _is_secret_field(p))
    problems += [
        Problem(path, "is encrypted (secure:) but is not a secret field: it would reach resources in plain text")
        for path in misplaced
    ]
    try:
        cfg = StackConfig.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as err:
        found = [p for p in _problems_from_validation(err) if p.path not in misplaced]
        raise ConfigError(problems + found, source) from None
    problems += [Problem(path, msg) for path, msg in cross_field_problems(cfg)]
    file_problems, facts = files.check(cfg, base_dir, review)
    problems += [Problem(path, msg) for path, msg in file_problems]
    secrets = frozenset(secret_keys) | {p.split(".")[0].split("[")[0] for p in enc}
    warnings = _plain_secrets(cfg, secrets, enc)
    if strict:
        problems += warnings
    if problems:
        raise ConfigError(problems, source)
    return Loaded(cfg, enc, secrets, tuple(warnings), tuple(facts))


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML without silent last-wins: a key given twice in one mapping is an error."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"key {key!r} appears twice", key_node.start_mark
            )
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


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


def _namespace_problems(keys: Iterable[str]) -> list[Problem]:
    out = []
    for key in keys:
        ns, sep, name = key.partition(":")
        if ns == NAMESPACE or ns in OTHER_NAMESPACES:
            if not sep or not name:
                out.append(Problem(f"(file) {key}", "a config key is `namespace:name`"))
            continue
        out.append(
            Problem(
                f"(file) {key}",
                f"unknown config namespace {ns!r}: this program reads `{NAMESPACE}:` keys "
                f"(others allowed: {', '.join(OTHER_NAMESPACES)}); a misspelled namespace would turn a layer off",
            )
        )
    return out


def read_stack_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The `ai-platform:` keys of a stack file, with encrypted leaves as placeholders."""
    where = str(path.name)
    try:
        doc = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("(file)", f"{path.name}: not valid YAML: {exc}")], where) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError([Problem("(file)", f"{path.name}: the top level must be a mapping (config: ...)")], where)
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError([Problem("(file)", f"{path.name}: `config:` must be a mapping")], where)
    problems = _namespace_problems(str(k) for k in config)
    if problems:
        raise ConfigError(problems, where)
    raw: dict[str, Any] = {}
    encrypted: list[str] = []
    for key, value in config.items():
        ns, _, name = str(key).partition(":")
        if ns != NAMESPACE:
            continue  # the engine's and providers' keys are not ours
        raw[name] = _strip_secure(value, [name], encrypted)
    return raw, encrypted


def from_stack_file(path: Path, strict: bool = False, review: bool | None = None) -> Loaded:
    """STRICT: what `pulumi up` needs (every provisioner file present) and no warnings.
    Otherwise a review: absent provisioner files are recorded in `Loaded.files`."""
    raw, encrypted = read_stack_file(path)
    reviewing = (not strict) if review is None else review
    return validate(raw, path.resolve().parent, encrypted, source=str(path.name), strict=strict, review=reviewing)


def read_pulumi_config() -> tuple[dict[str, Any], frozenset[str]]:
    """The `ai-platform:` keys the engine (or mock runtime) hands the program, and which of
    them are secret."""
    from pulumi.runtime import config as rc

    keys = set(rc.CONFIG.get()) | set(rc.get_config_env())
    problems = _namespace_problems(keys)
    if problems:
        raise ConfigError(problems)
    raw: dict[str, Any] = {}
    secret: set[str] = set()
    for full in sorted(keys):
        ns, _, name = full.partition(":")
        if ns != NAMESPACE or not name:
            continue
        value = rc.get_config(full)
        if isinstance(value, str):
            try:
                # Structured values arrive JSON-encoded (null too); plain strings stay strings.
                decoded = json.loads(value)
                if decoded is None or isinstance(decoded, dict | list | bool | int | float):
                    value = decoded
            except ValueError:
                pass
        raw[name] = value
        if rc.is_config_secret(full):
            secret.add(name)
    return raw, frozenset(secret)


def from_pulumi(base_dir: Path | None = None) -> Loaded:
    raw, secret = read_pulumi_config()
    return validate(raw, base_dir or Path.cwd(), source="stack config", secret_keys=secret)
