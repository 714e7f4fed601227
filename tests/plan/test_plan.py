"""The offline plans of dev and prod: valid against real schemas, rules hold, deterministic."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components import chart_schemas
from stacks import plan as planmod
from stacks.mockrun import Recording
from tests.conftest import ROOT, SHARED, stand_in_airgap
from tests.plan.k8s_schema import manifest_of, validate

CHARTS = SHARED / "charts"


@pytest.fixture(scope="module")
def stack_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for stack in ("dev", "prod"):
        d = tmp_path_factory.mktemp(stack)
        (d / f"Pulumi.{stack}.yaml").write_text((ROOT / f"Pulumi.{stack}.yaml").read_text())
        stand_in_airgap(d)
        out[stack] = d / f"Pulumi.{stack}.yaml"
    return out


@pytest.fixture(scope="module")
def plans(stack_dirs: dict[str, Path]) -> dict[str, tuple[Recording, list[Any]]]:
    return {s: planmod.build_plan(p) for s, p in stack_dirs.items()}


def k8s_version() -> str:
    from config.cluster import K3s

    return ".".join(K3s().version.lstrip("v").split(".")[:2])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_rules_hold(plans: dict[str, tuple[Recording, list[Any]]], stack: str) -> None:
    assert [str(v) for v in plans[stack][1]] == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_builtin_objects_validate_strictly(plans: dict[str, tuple[Recording, list[Any]]], stack: str) -> None:
    rec = plans[stack][0]
    checked = 0
    problems = []
    for d in rec.declared:
        if not d.custom or d.read:
            continue
        found = manifest_of(d.type, d.inputs)
        if found is None:
            continue
        manifest, patch = found
        for err in validate(manifest, k8s_version(), patch):
            problems.append(f"{d.key}: {err}")
        checked += 1
    assert problems == []
    assert checked >= 5, "the plan should declare built-in objects to validate"


def test_strict_validation_catches_unknown_fields() -> None:
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dataa": {}}
    assert validate(bad, k8s_version(), patch=False)
    assert (
        validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ok"}}, k8s_version(), patch=False)
        == []
    )


def _schema(name: str) -> dict[str, Any]:
    """A chart schema as the program ships it (components/schemas/)."""
    chart, version = name.removesuffix(".values.schema.json").split("-v")
    shipped = chart_schemas.shipped(chart, version)
    assert shipped is not None, name
    return shipped.schema


@pytest.mark.skipif(not CHARTS.is_dir(), reason=f"the team's chart reference {CHARTS} is not beside this checkout")
@pytest.mark.parametrize("chart", ["csghub", "runner", "dataflow"])
@pytest.mark.parametrize("version", ["1.17.0", "2.4.0"])
def test_shipped_schemas_are_the_charts_own(chart: str, version: str) -> None:
    shipped = chart_schemas.SCHEMA_DIR / f"{chart}-{version}.values.schema.json"
    assert shipped.read_bytes() == (CHARTS / f"{chart}-v{version}.values.schema.json").read_bytes()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_csghub_values_validate_against_the_chart_schemas(
    plans: dict[str, tuple[Recording, list[Any]]], stack: str
) -> None:
    rec = plans[stack][0]
    values = rec.get("csghub-release", planmod.RELEASE).inputs["values"]
    assert isinstance(values, dict)
    jsonschema.Draft7Validator(_schema("csghub-v1.17.0.values.schema.json")).validate(values)
    runner = {k: v for k, v in values["runner"].items()}
    jsonschema.Draft7Validator(_schema("runner-v1.17.0.values.schema.json")).validate(runner)
    df = {k: v for k, v in values["dataflow"].items() if k != "enabled"}
    jsonschema.Draft7Validator(_schema("dataflow-v1.17.0.values.schema.json")).validate(df)


def test_standalone_dataflow_values_validate(tmp_path: Path) -> None:
    from tests.conftest import run_program, standalone_dataflow

    rec = run_program(standalone_dataflow(persistence={"storageClass": "nfs"}))
    values = rec.get("dataflow-dataflow", planmod.RELEASE).inputs["values"]
    jsonschema.Draft7Validator(_schema("dataflow-v1.17.0.values.schema.json")).validate(values)


def test_chart_schema_rejects_a_string_nodeport() -> None:
    schema = _schema("csghub-v1.17.0.values.schema.json")
    bad = {"global": {"gateway": {"service": {"nodePorts": {"http": "30080"}}}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(bad))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan_is_byte_identical_across_runs(stack_dirs: dict[str, Path], stack: str, tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        rec, violations = planmod.build_plan(stack_dirs[stack])
        out = tmp_path / f"run{i}"
        planmod.write_plan(rec, violations, out)
        outs.append({str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert outs[0].keys() == outs[1].keys()
    assert outs[0] == outs[1]


def test_plan_writes_values_scripts_graph_and_outputs(stack_dirs: dict[str, Path], tmp_path: Path) -> None:
    rec, violations = planmod.build_plan(stack_dirs["prod"])
    summary = planmod.write_plan(rec, violations, tmp_path)
    assert "not a diff against a live stack" in summary
    assert (tmp_path / "helm" / "csghub-release.yaml").is_file()
    vals = yaml.safe_load((tmp_path / "helm" / "csghub-release.yaml").read_text())
    assert re.fullmatch(r"\[secret:[0-9a-f]{12}\]", vals["casdoor"]["admin"]["password"])  # a keyed mask
    resources = {r["name"]: r for r in json.loads((tmp_path / "resources.json").read_text())}
    create = resources["k3s-prod-agent-0-install"]["inputs"]["create"]
    assert create["sudo"] is True and create["args"]["install"] == "airgap"
    script = tmp_path / "scripts" / create["script"]
    assert re.fullmatch(r"k3s-install@[0-9a-f]{12}\.sh", script.name)
    assert script.read_text().startswith("# shellcheck shell=bash")
    # every node's install runs the one text, written once
    assert len(list((tmp_path / "scripts").glob("k3s-install@*.sh"))) == 1
    # the exact inputs stay available
    exact = {r["name"]: r for r in json.loads((tmp_path / "resources.exact.json").read_text())}
    assert exact["k3s-prod-agent-0-install"]["inputs"]["create"].startswith("sudo -n bash -c ")
    assert (tmp_path / "graph.mmd").read_text().startswith("flowchart TD")
    outputs = json.loads((tmp_path / "outputs.json").read_text())
    assert outputs["kubeconfig"] == "[secret]"
    assert outputs["credentials"]["csghub"]["password"] == "[secret]"
    text = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert "REPLACE-ME" not in text  # encrypted config values never appear


def test_make_plan_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  ai-platform:cluster:\n    servers: [{name: a, host: 'x y'}]\n")
    assert planmod.main([str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "ai-platform:cluster.servers[0].host" in capsys.readouterr().err


def test_prod_plans_on_a_bare_clone_and_records_the_provisioner_files(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "Pulumi.prod.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
    rec, violations = planmod.build_plan(bare / "Pulumi.prod.yaml")
    assert violations == []
    absent = {f.key for f in rec.files if not f.present}
    assert {
        "cluster.k3s.airgap.dir",
        "octopus.repo.caFile",
        "cluster.gpu.airgap.packages[0]",
    } <= absent
    summary = planmod.write_plan(rec, violations, tmp_path / "out-bare")
    assert f"absent here — required at pulumi up: {len(absent)}" in summary
    # with them present: path, size and sha256, so replacing the bundle shows as exactly that
    stand_in_airgap(bare)
    rec2, _ = planmod.build_plan(bare / "Pulumi.prod.yaml")
    facts = {f.key: f for f in rec2.files}
    assert all(f.present for f in facts.values())
    bundle = facts["cluster.k3s.airgap.dir"]
    names = ("k3s", "k3s-airgap-images-amd64.tar.zst", "install.sh")
    assert bundle.size == sum(len(f"stand-in {n} for plan tests\n") for n in names) and len(bundle.sha256 or "") == 64
    planmod.write_plan(rec2, [], tmp_path / "out")
    files = json.loads((tmp_path / "out" / "files.json").read_text())
    assert files["cluster.k3s.airgap.dir"] == {
        "path": "airgap/k3s-bundle",
        "size": bundle.size,
        "sha256": bundle.sha256,
    }


def test_the_program_under_the_engine_still_refuses_absent_files(tmp_path: Path) -> None:
    import pulumi

    from config.load import read_stack_file
    from stacks import mockrun

    (tmp_path / "Pulumi.prod.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
    raw, _ = read_stack_file(tmp_path / "Pulumi.prod.yaml")
    with pytest.raises(pulumi.RunError, match=r"ai-platform:cluster\.k3s\.airgap\.dir: file not found"):
        mockrun.run(raw, "prod", tmp_path)  # not a review: as `pulumi preview` / `pulumi up` run it
