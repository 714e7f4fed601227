"""Chart values checked against the charts' values.schema.json before anything is
registered: from a repository (the schemas shipped in components/schemas/) or a local chart
(its own schema)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import chart_schemas
from config.load import ConfigError, from_stack_file
from config.stack import StackConfig
from stacks.__main__ import main as stacks_cli
from stacks.platform import chart_value_problems, validate_chart_values
from tests.conftest import ROOT, platform, run_program, standalone_dataflow

# A key the program does not set (pass-through may add keys), of a type the schema refuses.
BAD_VALUE = {"global": {"gateway": {"controllerName": 3}}}
BAD_MESSAGE = "chart value global.gateway.controllerName: 3 is not of type 'string'"


def config(raw: dict[str, Any]) -> StackConfig:
    return StackConfig.model_validate(raw)


def test_dev_and_prod_values_are_valid_with_every_schema_known(prod_dir: Path) -> None:
    for path in (ROOT / "Pulumi.dev.yaml", prod_dir / "Pulumi.prod.yaml"):
        cfg = from_stack_file(path).config
        assert chart_value_problems(cfg, path.parent) == ([], []), path.name


def test_a_value_the_csghub_schema_rejects_names_the_key_the_value_and_the_schema() -> None:
    raw = platform()
    raw["csghub"]["values"] = BAD_VALUE
    problems, _ = chart_value_problems(config(raw), ROOT)
    assert [str(p) for p in problems] == [
        f"ai-platform:csghub.values: {BAD_MESSAGE} "
        "(schema: chart csghub 1.17.0 (components/schemas/csghub-1.17.0.values.schema.json))"
    ]


def test_pass_through_values_may_not_replace_what_the_program_sets() -> None:
    raw = platform()
    raw["csghub"]["values"] = {
        "casdoor": {"admin": {"password": "override"}},  # would make the credentials output lie
        "global": {"gateway": {"service": {"nodePorts": {"http": 30081}}}},
        "portal": {"replicas": 2},  # a key the program does not set: fine
    }
    problems, _ = chart_value_problems(config(raw), ROOT)
    assert sorted(str(p) for p in problems) == [
        "ai-platform:csghub.values.casdoor.admin.password: is set by the program from typed config: use "
        "csghub.admin instead",
        "ai-platform:csghub.values.global.gateway.service.nodePorts.http: is set by the program from typed "
        "config: use gateway (and csghub.domain, csghub.publicDomain) instead",
    ]


def test_subchart_values_are_checked_against_the_subchart_schema() -> None:
    raw = platform()
    raw["csghub"]["values"] = {"runner": {"service": {"port": "8080"}}}
    cfg = config(raw)
    schema = chart_schemas.shipped("runner", "1.17.0")
    assert schema is not None
    problems, _ = chart_value_problems(cfg, ROOT)
    assert any("runner-1.17.0.values.schema.json" in p.message for p in problems), problems


def test_standalone_dataflow_values_are_checked() -> None:
    problems, notes = chart_value_problems(config(standalone_dataflow()), ROOT)
    assert (problems, notes) == ([], [])
    bad = standalone_dataflow(values={"global": {"image": {"pullPolicy": 3}}})
    problems, _ = chart_value_problems(config(bad), ROOT)
    assert problems and all(p.path == "dataflow.values" for p in problems)
    assert any("global.image.pullPolicy" in p.message for p in problems)


def test_the_program_registers_nothing_when_a_chart_value_is_rejected(registered: list[str]) -> None:
    raw = platform()
    raw["csghub"]["values"] = BAD_VALUE
    with pytest.raises(
        pulumi.RunError, match=r"ai-platform:csghub\.values: chart value global\.gateway\.controllerName"
    ):
        run_program(raw)
    assert registered == []


def test_a_version_without_a_known_schema_is_a_note_not_an_error() -> None:
    raw = platform()
    raw["csghub"]["chart"] = {"repository": "https://charts.opencsg.com/csghub", "name": "csghub", "version": "1.17.9"}
    problems, notes = chart_value_problems(config(raw), ROOT)
    assert problems == []
    assert notes[0] == "chart csghub 1.17.9: no values.schema.json known for it; Helm checks its values at install"


def test_an_unknown_chart_line_is_refused_naming_the_key_and_the_lines() -> None:
    raw = platform()
    raw["csghub"]["chart"] = {"repository": "https://charts.opencsg.com/csghub", "name": "csghub", "version": "9.9.9"}
    with pytest.raises(ConfigError) as err:
        validate_chart_values(config(raw), ROOT)
    assert [str(p) for p in err.value.problems] == [
        "ai-platform:csghub.chart.version: '9.9.9' is not a supported CSGHub chart line (supported: 1.17.x, 2.4.x)"
    ]


def _chart_tgz(path: Path, schema: dict[str, Any] | None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        files = {"csghub/Chart.yaml": b"name: csghub\nversion: 1.17.0\n"}
        if schema is not None:
            files["csghub/values.schema.json"] = json.dumps(schema).encode()
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_local_chart_is_checked_against_its_own_schema(tmp_path: Path) -> None:
    # a local chart whose schema requires a key the program never sets: its schema wins
    _chart_tgz(tmp_path / "csghub.tgz", {"type": "object", "required": ["onlyInThisChart"]})
    raw = platform()
    raw["csghub"]["chart"] = {
        "repository": "https://charts.opencsg.com/csghub",
        "name": "csghub",
        "version": "1.17.0",
        "localPath": "csghub.tgz",
    }
    problems, _ = chart_value_problems(config(raw), tmp_path)
    assert any(
        "'onlyInThisChart' is a required property (schema: the local chart csghub.tgz)" in str(p) for p in problems
    )
    # without a schema of its own, the shipped one for the pinned version applies
    _chart_tgz(tmp_path / "csghub.tgz", None)
    assert chart_value_problems(config(raw), tmp_path) == ([], [])


def test_stacks_check_reports_chart_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "Pulumi.bad.yaml"
    raw = (ROOT / "Pulumi.dev.yaml").read_text()
    assert "  ai-platform:csghub:\n" in raw
    stack.write_text(
        raw.replace(
            "  ai-platform:csghub:\n",
            "  ai-platform:csghub:\n    values: {global: {gateway: {controllerName: 3}}}\n",
            1,
        )
    )
    assert stacks_cli(["check", str(stack)]) == 1
    err = capsys.readouterr().err
    assert "invalid chart values: 1 problem" in err
    assert f"ai-platform:csghub.values: {BAD_MESSAGE}" in err


def test_validate_raises_config_error() -> None:
    raw = platform()
    raw["csghub"]["values"] = BAD_VALUE
    with pytest.raises(ConfigError) as err:
        validate_chart_values(config(raw), ROOT)
    assert err.value.source == "chart values"
