"""The offline plan (stacks/plan.py, under the SDK's mock runtime) against the real engine's preview.

Both sides are reduced to resources keyed by (type, name) with their parent (type::name) and
inputs. Agreement means: the same set of resources, the same parents, and inputs equal leaf
by leaf, with secret masking taken into account:
- a leaf the plan shows as `[secret]` must be masked in the preview too (at that path or
  above it) — otherwise the engine shows a value the plan promises is a secret;
- where the preview masks a whole subtree, the plan's subtree must contain a secret (the
  engine marks a whole input secret when any part of it is one) and is not compared inside;
- a value the engine does not know yet (a fresh preview) matches anything.

The engine shows inputs after the provider's Check; the plan, what the program registered.
`provider_check()` applies to the plan the few rewrites the Kubernetes provider's Check is
known to make (each a fact of its code, named below), and `ENGINE_ADDED` lists the inputs
Check adds with the value it adds. Nothing else is tolerated: any other difference is a
mismatch.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stacks import mockrun

SECRET = mockrun.SECRET
# The engine's placeholder for a value not known during preview.
UNKNOWN_ENGINE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# The plan's placeholder for what only `up` computes (a release's revision, resourceVersion).
UNKNOWN_PLAN = mockrun.COMPUTED
STACK_TYPE = "pulumi:pulumi:Stack"


RELEASE = "kubernetes:helm.sh/v3:Release"
PROVIDER = "pulumi:providers:kubernetes"


def _local_chart_version(plan_inputs: dict[str, Any]) -> Any:
    chart = Path(str(plan_inputs.get("chart", "")))
    meta = chart / "Chart.yaml"
    return (yaml.safe_load(meta.read_text()) or {}).get("version") if meta.is_file() else None


# Inputs the provider's Check adds, with the value it adds (a function of the plan's inputs).
# helm.sh/v3 Release: Check decodes the inputs into the provider's Release type and back, so
# every option appears with its zero value; `version` is read from a local chart's Chart.yaml.
# The provider resource: the engine records the plugin's version, and an internal field.
_FALSY: Callable[[dict[str, Any]], Any] = lambda _: (False, "", 0)  # noqa: E731
ENGINE_ADDED: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
    RELEASE: {
        **{
            k: _FALSY
            for k in (
                "allowNullValues atomic cleanupOnFail createNamespace dependencyUpdate description devel "
                "disableCRDHooks disableOpenapiValidation disableWebhooks forceUpdate keyring lint postrender "
                "recreatePods renderSubchartNotes replace resetValues reuseValues skipAwait skipCrds verify "
                "waitForJobs"
            ).split()
        },
        "version": lambda plan: (_local_chart_version(plan),),
    },
    PROVIDER: {"version": lambda _: ("4.34.2",), "__internal": lambda _: ({},)},
}


def provider_check(typ: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The plan's inputs as the Kubernetes provider's Check returns them."""
    out = copy.deepcopy(inputs)
    if typ == RELEASE:
        # the SDK sends `compat: "true"`; the provider's Release type has no such field
        out.pop("compat", None)
    if typ == "kubernetes:core/v1:Secret" and "stringData" in out:
        # clients.normalizeSecret: stringData is folded into data, base64-encoded
        string_data = out.pop("stringData")
        if string_data == SECRET or out.get("data") == SECRET:
            out["data"] = SECRET
        else:
            data = dict(out.get("data") or {})
            data.update({k: base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()})
            out["data"] = data
    if typ == "kubernetes:core/v1:PersistentVolume" and (out.get("spec") or {}).get("storageClassName") == "":
        # clients.Normalize round-trips through the typed PersistentVolume, whose
        # storageClassName is `omitempty`: "" and absent are the same volume (no class)
        del out["spec"]["storageClassName"]
    return out


def short_urn(urn: str) -> str:
    """urn:pulumi:stack::project::a$b$type::name → type::name (as stacks/mockrun.py does)."""
    parts = urn.split("::")
    if len(parts) < 4:
        return urn
    return f"{parts[2].rsplit('$', 1)[-1]}::{parts[3]}"


@dataclass(frozen=True)
class Res:
    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    read: bool = False
    custom: bool = True

    @property
    def key(self) -> str:
        return f"{self.type}::{self.name}"


def from_plan(resources: list[dict[str, Any]]) -> dict[str, Res]:
    out = {}
    for r in resources:
        parent = r.get("parent")
        if parent and parent.startswith(f"{STACK_TYPE}::"):
            parent = None
        res = Res(r["type"], r["name"], parent, r.get("inputs") or {}, bool(r.get("read")), bool(r.get("custom", True)))
        out[res.key] = res
    return out


def from_preview(preview: dict[str, Any]) -> dict[str, Res]:
    """`pulumi preview --json`: one step per resource; the providers' own default provider
    and the Stack left out (the plan has neither)."""
    out = {}
    for step in preview.get("steps", []):
        state = step.get("newState") or step.get("oldState") or {}
        typ = state.get("type") or step.get("urn", "").split("::")[2].rsplit("$", 1)[-1]
        if typ == STACK_TYPE:
            continue
        name = step["urn"].split("::")[-1]
        if typ.startswith("pulumi:providers:") and name.startswith("default"):
            continue
        parent = state.get("parent")
        parent = short_urn(parent) if parent else None
        if parent and parent.startswith(f"{STACK_TYPE}::"):
            parent = None
        read = step.get("op") in ("read", "refresh") or bool(state.get("external"))
        res = Res(typ, name, parent, state.get("inputs") or {}, read, bool(state.get("custom", True)))
        out[res.key] = res
    return out


def _contains_secret(value: Any) -> bool:
    if value == SECRET:
        return True
    if isinstance(value, dict):
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def _norm(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def diff_inputs(plan: Any, engine: Any, path: str = "") -> tuple[list[str], list[str]]:
    """(mismatches, engine-only paths) between the plan's and the engine's inputs."""
    mismatches: list[str] = []
    extra: list[str] = []
    if engine == UNKNOWN_ENGINE or plan == UNKNOWN_PLAN:
        return mismatches, extra
    if engine == SECRET:
        if not _contains_secret(plan):
            mismatches.append(f"{path or '(inputs)'}: masked by the engine, plain in the plan: {plan!r}")
        return mismatches, extra
    if plan == SECRET:
        mismatches.append(f"{path}: a secret in the plan, shown by the engine: {engine!r}")
        return mismatches, extra
    if isinstance(plan, dict) and isinstance(engine, dict):
        for k in sorted(set(plan) | set(engine)):
            sub = f"{path}.{k}" if path else k
            if k not in engine:
                mismatches.append(f"{sub}: in the plan ({plan[k]!r}), not in the engine's inputs")
            elif k not in plan:
                extra.append(sub)
            else:
                m, e = diff_inputs(plan[k], engine[k], sub)
                mismatches += m
                extra += e
        return mismatches, extra
    if isinstance(plan, list) and isinstance(engine, list):
        if len(plan) != len(engine):
            return [f"{path}: plan has {len(plan)} items, the engine {len(engine)}: {plan!r} vs {engine!r}"], extra
        for i, (p, e_) in enumerate(zip(plan, engine, strict=True)):
            m, e = diff_inputs(p, e_, f"{path}[{i}]")
            mismatches += m
            extra += e
        return mismatches, extra
    if _norm(plan) != _norm(engine):
        mismatches.append(f"{path}: plan {plan!r}, engine {engine!r}")
    return mismatches, extra


@dataclass
class Comparison:
    only_plan: list[str]
    only_engine: list[str]
    parents: list[str]
    inputs: dict[str, list[str]]
    engine_only_inputs: dict[str, list[str]]
    compared: int

    @property
    def mismatches(self) -> int:
        return len(self.only_plan) + len(self.only_engine) + len(self.parents) + sum(map(len, self.inputs.values()))

    def report(self) -> str:
        lines = [f"{self.compared} resources compared, {self.mismatches} mismatches"]
        lines += [f"  only in the plan: {k}" for k in self.only_plan]
        lines += [f"  only in the engine's preview: {k}" for k in self.only_engine]
        lines += [f"  parent: {p}" for p in self.parents]
        for key, ms in sorted(self.inputs.items()):
            lines += [f"  inputs of {key}: {m}" for m in ms]
        if self.engine_only_inputs:
            lines.append("inputs the provider's Check adds (ENGINE_ADDED; not set by the program):")
            for key, paths in sorted(self.engine_only_inputs.items()):
                lines.append(f"  {key}: {', '.join(paths)}")
        return "\n".join(lines)


def compare(plan: dict[str, Res], engine: dict[str, Res], inputs: bool = True) -> Comparison:
    both = sorted(set(plan) & set(engine))
    cmp = Comparison(
        only_plan=sorted(set(plan) - set(engine)),
        only_engine=sorted(set(engine) - set(plan)),
        parents=[
            f"{k}: plan {plan[k].parent}, engine {engine[k].parent}" for k in both if plan[k].parent != engine[k].parent
        ],
        inputs={},
        engine_only_inputs={},
        compared=len(both),
    )
    if inputs:
        for k in both:
            if plan[k].read:
                continue  # a `get`: the plan records its id/properties, the engine the live object
            if not engine[k].custom:
                # a component: the engine keeps no inputs for it in state (a provider-built one,
                # like yaml/v2 ConfigFile, shows what it built as its children instead)
                continue
            planned = provider_check(plan[k].type, plan[k].inputs)
            m, extra = diff_inputs(planned, engine[k].inputs)
            added = ENGINE_ADDED.get(plan[k].type, {})
            for path in extra:
                expected = added.get(path)
                value = engine[k].inputs.get(path)
                if expected is not None and value in expected(planned):
                    cmp.engine_only_inputs.setdefault(k, []).append(f"{path}={value!r}")
                else:
                    m.append(f"{path}: added by the engine ({value!r}), not in the plan")
            if m:
                cmp.inputs[k] = m
    return cmp
