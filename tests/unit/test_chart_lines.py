"""CSGHub's two chart lines (issue 21): 1.17 for the seeds' MongoDB-era Dataflow, 2.4 for a
team installing today. Each key the program sets for 2.4 must be a real 2.4 key (the 2.4
schemas ignore unknown keys), the Kourier pinning is 1.17's (and 2.4's kourier mode), the
line's refusals name their keys, and an in-place line change needs its acknowledgement,
whose pre-steps come before the Release."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pulumi
import pytest

from stacks import mockrun, plandiff
from stacks.platform import validate_chart_values
from tests.conftest import ROOT, SHARED, platform

CHARTS = SHARED / "charts"
EXAMPLE = ROOT / "examples" / "csghub-2.4" / "Pulumi.csghub24.yaml"
RELEASE = "kubernetes:helm.sh/v3:Release"
CHART_24 = {"repository": "https://charts.opencsg.com/csghub", "name": "csghub", "version": "2.4.0"}


def on_24(**csghub: Any) -> dict[str, Any]:
    raw = platform(csghub={"domain": "ai.example.com", "chart": CHART_24, **csghub})
    raw["dataflow"] = {"enabled": True, "persistence": {"storageClass": "x"}}
    return raw


def values(rec: mockrun.Recording) -> dict[str, Any]:
    return rec.get("csghub-release", RELEASE).inputs["values"]


def leaf_paths(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(tree, dict) and tree:
        return [p for k, v in tree.items() for p in leaf_paths(v, (*prefix, str(k)))]
    return [prefix]


KEY_LINE = re.compile(r"^(\s*)(?:# ?)?([A-Za-z][\w.-]*):(?:\s|$)")


def documented(text: str) -> set[tuple[str, ...]]:
    """Every key path a chart's values.yaml knows: its keys, and the optional keys it
    documents as comments at their place (`# storageClassName: ""`), by indentation."""
    paths: set[tuple[str, ...]] = set()
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        m = KEY_LINE.match(line)
        if m is None:
            continue
        indent, key = len(m.group(1)), m.group(2)
        commented = line.lstrip().startswith("#")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*[k for _, k in stack], key)
        if commented and len(path) > 1 and path[:-1] not in paths:
            continue  # prose, not a key under a known parent
        paths.add(path)
        stack.append((indent, key))
    return paths


def known(keys: set[tuple[str, ...]], path: tuple[str, ...]) -> bool:
    return path in keys


@pytest.mark.skipif(not CHARTS.is_dir(), reason=f"the team's chart reference {CHARTS} is not beside this checkout")
def test_every_key_the_program_sets_on_24_is_a_24_key() -> None:
    raw = on_24(gpu=True, values={})
    raw["cluster"]["agents"][1]["gpu"] = True
    rec = mockrun.run(raw, "t", ROOT)
    csghub = documented((CHARTS / "csghub-v2.4.0.values.yaml").read_text())
    runner = documented((CHARTS / "runner-v2.4.0.values.yaml").read_text())
    dataflow = documented((CHARTS / "dataflow-v2.4.0.values.yaml").read_text())
    unknown = []
    for path in leaf_paths(values(rec)):
        if path[0] == "runner":
            ok = known(csghub, path) or known(runner, path[1:])
        elif path[0] == "dataflow" and len(path) > 2:
            ok = known(dataflow, path[1:])
        else:
            ok = known(csghub, path)
        if not ok:
            unknown.append(".".join(path))
    assert unknown == [], f"keys the 2.4 chart does not know: {unknown}"


def test_the_24_runner_keys_and_knative_through_the_gateway() -> None:
    rec = mockrun.run(on_24(), "t", ROOT)
    runner = values(rec)["runner"]
    assert runner["knative"]["serving"]["ingress"] == "gateway-api"
    assert runner["knative"]["serving"]["autoscaler"] == {
        "enableScaleToZero": False,  # a boolean on 2.x
        "scaleToZeroPodRetentionPeriod": "60m",
    }
    assert runner["runner"] == {"storageClassName": "local-path"}  # nested, and honoured on 2.x
    assert runner["volcano"] == {"enabled": False}
    assert "storageClassName" not in runner and "applicationEndpoint" not in runner
    # no Kourier to pin in gateway-api mode
    assert not [d for d in rec.declared if "kourier" in d.name or d.type.endswith("KnativeServingPatch")]
    assert rec.outputs["csghubChartLine"] == "2.4"


def test_kourier_mode_on_24_keeps_the_pinning() -> None:
    rec = mockrun.run(on_24(knativeIngress="kourier"), "t", ROOT)
    assert values(rec)["runner"]["knative"]["serving"]["ingress"] == "kourier"
    assert rec.get("knative-serving-kourier-service-type")


def test_the_117_line_is_unchanged_and_refuses_2x_keys() -> None:
    rec = mockrun.run(platform(csghub={"domain": "ai.example.com"}), "t", ROOT)
    runner = values(rec)["runner"]
    assert runner["knative"]["serving"]["autoscaler"]["enableScaleToZero"] == "false"
    assert runner["storageClassName"] == "local-path"
    assert rec.get("knative-serving-kourier-service-type")
    assert rec.outputs["csghubChartLine"] == "1.17"
    with pytest.raises(pulumi.RunError, match=r"csghub\.knativeIngress: is a CSGHub 2\.x key"):
        mockrun.run(platform(csghub={"domain": "ai.example.com", "knativeIngress": "gateway-api"}), "t", ROOT)


PG = {"host": "pg.example.com", "user": "csghub", "password": "p"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "dataflow": {
                    "enabled": True,
                    "databases": {"mongo": {"mode": "external", "external": {**PG, "port": 27017}}},
                }
            },
            r"dataflow\.databases\.mongo: Dataflow on CSGHub 2\.x uses PostgreSQL only \(mongo was removed in 2\.0\)",
        ),
        (
            {
                "dataflow": {
                    "enabled": True,
                    "databases": {"redis": {"mode": "external", "external": {"host": "r.example.com"}}},
                }
            },
            r"dataflow\.databases\.redis: .*redis was removed in 2\.2",
        ),
        ({"csghub": {"services": {"mongo": PG}}}, r"csghub\.services\.mongo: CSGHub 2\.x has no MongoDB"),
        (
            {"csghub": {"services": {"postgresql": PG}}},
            r"csghub\.services\.postgresql\.databases: CSGHub 2\.x needs csghub_agenticflow, csghub_superset",
        ),
        ({"csghub": {"agentSandbox": False}}, r"csghub\.agentSandbox: chart 2\.4\.0's values\.yaml has no key"),
        (
            {"csghub": {"chart": {**CHART_24, "localPath": "charts/csghub"}}},
            r"csghub\.chart\.localPath: chart 2\.4 vendors",
        ),
    ],
    ids=[
        "dataflow-mongo",
        "dataflow-redis",
        "csghub-mongo",
        "external-pg-databases",
        "agent-sandbox-off",
        "airgap-dir",
    ],
)
def test_24_refusals_name_their_key(change: dict[str, Any], message: str, tmp_path: Path) -> None:
    raw = on_24()
    for section, updates in change.items():
        raw[section] = {**raw[section], **updates}
        if section == "dataflow" and "persistence" not in raw[section]:
            raw[section]["persistence"] = {"storageClass": "x"}
    (tmp_path / "charts" / "csghub").mkdir(parents=True)
    with pytest.raises(pulumi.RunError, match=message):
        mockrun.run(raw, "t", tmp_path)


def test_an_external_postgresql_listing_the_new_databases_is_accepted() -> None:
    rec = mockrun.run(
        on_24(services={"postgresql": {**PG, "databases": ["csghub_agenticflow", "csghub_superset"]}}), "t", ROOT
    )
    assert values(rec)["global"]["postgresql"]["enabled"] is False


def test_the_example_24_stack_plans_and_its_values_are_valid() -> None:
    from config.load import from_stack_file
    from stacks import plan

    validate_chart_values(from_stack_file(EXAMPLE).config, EXAMPLE.parent)
    rec, violations = plan.build_plan(EXAMPLE)
    assert violations == [] and rec.outputs["csghubChartLine"] == "2.4"


# -- an in-place change of the line ---------------------------------------------------------------


def test_an_unacknowledged_line_change_is_refused_before_the_release() -> None:
    with pytest.raises(pulumi.RunError, match=r"csghub\.chart\.version: this stack's CSGHub release is on the 1\.17"):
        mockrun.run(on_24(), "t", ROOT, stack_outputs={"csghubChartLine": "1.17"})


def test_an_acknowledged_change_runs_its_pre_steps_before_the_release() -> None:
    raw = on_24(migration={"acknowledge": "1.17-to-2.4"})
    rec = mockrun.run(raw, "t", ROOT, stack_outputs={"csghubChartLine": "1.17"})
    release = rec.get("csghub-release", RELEASE)
    for step in (
        "kubernetes:yaml/v2:ConfigFile::csghub-migration-envoy-gateway-crds",
        "kubernetes:core/v1:NamespacePatch::csghub-migration-adopt-knative-namespace",
        "kubernetes:operator.knative.dev/v1beta1:KnativeServingPatch::csghub-migration-adopt-knative-serving",
        "kubernetes:batch/v1:Job::csghub-migration-remove-old-jobs",
    ):
        assert step in release.dependencies, step
    adopt = rec.get("csghub-migration-adopt-knative-namespace").inputs["metadata"]
    assert adopt["labels"] == {"app.kubernetes.io/managed-by": "Helm"}
    assert adopt["annotations"]["meta.helm.sh/release-name"] == "csghub"
    crds = rec.get("csghub-migration-envoy-gateway-crds").inputs["file"]
    assert "/v1.7.5/" in crds


def test_a_stack_already_on_24_needs_no_acknowledgement() -> None:
    rec = mockrun.run(on_24(), "t", ROOT, stack_outputs={"csghubChartLine": "2.4"})
    assert rec.get("csghub-release", RELEASE)


def test_plan_diff_of_the_acknowledged_change_shows_the_pre_steps(tmp_path: Path) -> None:
    base = mockrun.run(platform(csghub={"domain": "ai.example.com"}), "t", ROOT)
    head = mockrun.run(on_24(migration={"acknowledge": "1.17-to-2.4"}), "t", ROOT)
    lines = plandiff.report([d.as_json() for d in base.declared], [d.as_json() for d in head.declared], ({}, {}))
    text = "\n".join(lines)
    for added in (
        "csghub-migration-envoy-gateway-crds",
        "csghub-migration-adopt-knative-serving",
        "csghub-migration-remove-old-jobs",
    ):
        assert "+ " in text and added in text, added
    assert "~ kubernetes:helm.sh/v3:Release::csghub-release" in text
    assert "values.runner.knative.serving.ingress" in text
