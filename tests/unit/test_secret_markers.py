"""Every secret stays secret (issue 16): each secret field of the model set to a marker of
its own, in plain text (the hard case: the engine would not even know it is a secret), for
a maximal stack, dev, prod and an existing cluster. No marker may appear in any input the
plan records, any output, any script argument or environment, or any file `make plan`
writes. (tests/hosts checks the hosts' process command lines.)"""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from config.load import read_stack_file
from config.stack import StackConfig
from stacks import mockrun, plan, rules
from tests.conftest import ROOT
from tests.unit.test_hostile_config import BASE, _unwrap


def secret_paths(model: type[BaseModel], raw: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every secret field of MODEL that RAW reaches (lists at index 0, mappings at their keys)."""
    out: list[tuple[str | int, ...]] = []
    if not isinstance(raw, dict):
        return out
    for name, info in model.model_fields.items():
        alias = info.alias or name
        ann = _unwrap(info.annotation)
        here = (*path, alias)
        value = raw.get(alias)
        if isinstance(ann, type) and issubclass(ann, SecretStr):
            if value is not None:  # the secrets this config gives (the others are generated)
                out.append(here)
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            out += secret_paths(ann, value, here)
        elif typing.get_origin(ann) is list and isinstance(value, list):
            (item,) = typing.get_args(ann)
            if isinstance(_unwrap(item), type) and issubclass(_unwrap(item), BaseModel):
                for i, v in enumerate(value):
                    out += secret_paths(_unwrap(item), v, (*here, i))
        elif typing.get_origin(ann) is dict and isinstance(value, dict):
            _, v_ann = typing.get_args(ann)
            if isinstance(_unwrap(v_ann), type) and issubclass(_unwrap(v_ann), BaseModel):
                for k, v in value.items():
                    out += secret_paths(_unwrap(v_ann), v, (*here, k))
    return out


def marked(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """RAW with every secret field it reaches set to a marker of its own."""
    out = copy.deepcopy(raw)
    markers = {}
    for i, path in enumerate(secret_paths(StackConfig, out)):
        node: Any = out
        for key in path[:-1]:
            node = node[key] if isinstance(node, list) else node.setdefault(key, {})
        marker = f"MARKER{i:03d}x{'x'.join(str(p) for p in path[-2:])}"
        if path[-1] == "kubeconfig":
            marker_value = (
                "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://10.9.0.1:6443'}}]\n"
                f"contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
                f"users: [{{name: u, user: {{token: {marker}}}}}]\n"
            )
        elif path[-2:] == ("tls", "key"):
            marker_value = f"-----BEGIN PRIVATE KEY-----\n{marker}\n-----END PRIVATE KEY-----\n"
        else:
            marker_value = marker
        node[path[-1]] = marker_value
        markers[".".join(map(str, path))] = marker
    return out, markers


def existing_cluster() -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["cluster"] = {"kubeconfig": "set by marked()"}
    raw["storage"]["mode"] = "local-path"
    raw["openhydra"]["nodes"] = []
    raw["octopus"]["nodes"] = ["a0"]
    return raw


def stack(name: str) -> dict[str, Any]:
    raw, _ = read_stack_file(ROOT / f"Pulumi.{name}.yaml")
    return raw


CASES = {
    "maximal": lambda: BASE,
    "existing-cluster": existing_cluster,
    "dev": lambda: stack("dev"),
    "prod": lambda: stack("prod"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_secret_marker_in_any_plain_input_output_or_plan_file(case: str, tmp_path: Path) -> None:
    raw, markers = marked(CASES[case]())
    assert len(markers) >= {"maximal": 28, "existing-cluster": 25, "dev": 2, "prod": 8}[case], markers
    rec = mockrun.run(raw, case, ROOT, review=True)
    assert rules.check(rec) == []
    out = tmp_path / "plan"
    plan.write_plan(rec, [], out)
    texts = {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}
    texts["outputs"] = repr(rec.outputs)
    texts["warnings"] = repr(rec.warnings)
    leaks = [(where, key) for key, m in markers.items() for where, text in texts.items() if m in text]
    assert leaks == [], f"secrets in plain text: {leaks[:10]}"
    # the markers are in the run at all: as secrets of the resources that need them
    with_secrets = mockrun.run(raw, case, ROOT, review=True, keep_secrets=True)
    raw_text = repr([d.raw_inputs for d in with_secrets.declared])
    reached = [k for k, m in markers.items() if m in raw_text]
    assert reached, "no marker reached any resource: the test would prove nothing"
