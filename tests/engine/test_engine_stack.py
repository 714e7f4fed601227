"""The platform's Kubernetes layers under the real Pulumi engine and the real Kubernetes provider.

One stack's life, in order (tests/engine/stack.py says what runs and what cannot):
preview → up → a second up changes nothing → refresh changes nothing → the offline plan
agrees with the engine → one config change previews as exactly that change → destroy is
refused while resources are protected → with protection lifted, destroy removes everything
the stack created and nothing else (checked against the API server).

Artifacts (the preview diff, the JSON previews, the figures) go to build/engine/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from stacks import plan as offline_plan
from tests.engine import compare
from tests.engine.conftest import ARTIFACTS, EngineCluster
from tests.engine.engine import PROVIDER_CODE, EngineEnv, Workspace, build_record
from tests.engine.stack import DOMAIN, EngineStack, engine_stack

pytestmark = [pytest.mark.engine, pytest.mark.incremental]

STACK = "engine"
CHANGED = "knative-serving-kourier-service-type"  # what the config change touches
FIGURES: dict[str, Any] = {}


def artifact(name: str, text: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.write_text(text)
    return path


def changes(preview: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in preview.get("steps", []) if s.get("op") not in ("same", "read")]


def packaged(c: EngineCluster) -> dict[str, Any]:
    """What the program patches on the packaged objects: their annotations, as the server has them."""
    sc = c.get("storageclass", "local-path")
    coredns = c.get("deployment", "coredns", "-n", "kube-system")
    return {
        "storageclass": sc["metadata"].get("annotations") or {},
        "coredns template": coredns["spec"]["template"]["metadata"].get("annotations") or {},
    }


class Life:
    """What the steps share."""

    ws: Workspace
    stack: EngineStack
    cluster: EngineCluster
    before: set[tuple[str, str, str]]
    after_up: set[tuple[str, str, str]]
    packaged_before: dict[str, Any]
    packaged_after_up: dict[str, Any]


@pytest.fixture(scope="module")
def life(engine_env: EngineEnv, engine_cluster: EngineCluster, tmp_path_factory: pytest.TempPathFactory) -> Life:
    work = tmp_path_factory.mktemp("engine-stack")
    life = Life()
    life.cluster = engine_cluster
    life.before = engine_cluster.inventory()
    life.packaged_before = packaged(engine_cluster)
    life.stack = engine_stack(engine_cluster.kubeconfig, engine_cluster.gateway_address, work)
    life.ws = Workspace(engine_env, work, STACK)
    life.ws.init(life.stack.plain, life.stack.secrets)
    FIGURES["toolchain"] = engine_env.describe()
    FIGURES["kubernetes provider"] = PROVIDER_CODE
    FIGURES["builds"] = {p.parent.name: build_record(p) for p in engine_env.built}
    return life


@pytest.fixture(scope="module", autouse=True)
def figures() -> Any:
    yield
    if FIGURES:
        artifact("figures.json", json.dumps(FIGURES, indent=2, sort_keys=True) + "\n")


def preview_json(life: Life, *extra: str) -> tuple[dict[str, Any], float]:
    res = life.ws.pulumi("preview", "--json", "--show-sames", *extra)
    return json.loads(res.stdout), res.seconds


def test_the_built_provider_is_the_one_the_engine_loads(engine_env: EngineEnv) -> None:
    plugins = [(p["kind"], p["name"], p["version"]) for p in engine_env.plugins()]
    assert ("resource", "kubernetes", "4.34.2") in plugins
    # Nothing else: no plugin was downloaded, none can be (automatic acquisition off).
    assert [p for p in plugins if p[0] == "resource"] == [("resource", "kubernetes", "4.34.2")]


def test_preview(life: Life) -> None:
    diff = life.ws.pulumi("preview", "--diff")
    artifact("preview-diff.txt", diff.stdout)
    FIGURES["preview seconds"] = round(diff.seconds, 1)
    preview, _ = preview_json(life)
    artifact("preview.json", json.dumps(preview, indent=2) + "\n")
    types = sorted({s["newState"]["type"] for s in preview["steps"] if s.get("newState")})
    # Existing-cluster mode with every generated secret supplied: nothing the engine
    # cannot run here (the command and random providers are not buildable on this machine).
    assert not [t for t in types if t.startswith(("random:", "command:", "pulumi:providers:random"))], types
    assert not [t for t in types if t.startswith("pulumi:providers:command")], types
    creates = [s for s in preview["steps"] if s["op"] == "create"]
    FIGURES["preview resources (create steps)"] = len(creates)
    assert creates, "a fresh stack previews creations"


def test_the_offline_plan_lists_the_resources_of_the_preview(life: Life) -> None:
    """Every resource (type, name, parent) of `make plan` is in the real preview and vice versa."""
    rec, violations = offline_plan.build_plan(life.ws.stack_file)
    assert not violations, violations
    plan = compare.from_plan([d.as_json() for d in rec.declared])
    preview = compare.from_preview(json.loads((ARTIFACTS / "preview.json").read_text()))
    result = compare.compare(plan, preview, inputs=True)
    artifact("plan-vs-preview.txt", result.report() + "\n")
    assert not (result.only_plan or result.only_engine or result.parents), result.report()
    assert result.mismatches == 0, result.report()


def test_up(life: Life) -> None:
    res = life.ws.pulumi("up", "--yes", "--diff")
    artifact("up.txt", res.stdout)
    FIGURES["up seconds"] = round(res.seconds, 1)
    state = json.loads(life.ws.pulumi("stack", "export").stdout)
    resources = [r for r in state["deployment"]["resources"] if r["type"] != "pulumi:pulumi:Stack"]
    FIGURES["resources in state after up (providers included)"] = len(resources)
    FIGURES["resource types"] = sorted({r["type"] for r in resources})
    c = life.cluster
    # What the program declared is on the API server, done by the real provider.
    assert (
        c.get("storageclass", "local-path")["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
        == "true"
    )
    for ns in ("csghub", "octopus", "knative-serving"):
        assert c.exists("namespace", ns)
    # Octopus' volumes are the chart's (stand-in): each claim bound to its static volume by
    # the real scheduler and PV controller, through the class and node affinity the program set.
    for svc in ("minio", "mysql", "redis", "logger", "logstash"):
        pvc = c.get("pvc", f"octopus-{svc}-pvc", "-n", "octopus")
        assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"] == f"octopus-{svc}-pv", pvc
    life.packaged_after_up = packaged(c)
    ks = c.get("knativeserving", "knative-serving", "-n", "knative-serving")
    assert ks["spec"]["ingress"]["kourier"]["service-type"] == "ClusterIP"
    assert ks["metadata"]["annotations"]["ai-platform.io/applied-for-revision"] == "1"
    dns = c.get("configmap", "coredns-custom", "-n", "kube-system")
    assert f"{c.gateway_address} {DOMAIN} " in dns["data"][f"{DOMAIN}.server"], dns["data"]
    coredns = c.get("deployment", "coredns", "-n", "kube-system")
    assert "ai-platform.io/coredns-custom-sha256" in coredns["spec"]["template"]["metadata"]["annotations"]
    assert c.exists("secret", "csghub-tls", "-n", "csghub")
    life.after_up = c.inventory()


def test_a_second_up_changes_nothing(life: Life) -> None:
    preview, seconds = preview_json(life)
    artifact("preview-after-up.json", json.dumps(preview, indent=2) + "\n")
    spurious = changes(preview)
    FIGURES["changes on the second up"] = len(spurious)
    if spurious:
        diff = life.ws.pulumi("preview", "--diff", check=False)
        artifact("spurious-diff.txt", diff.stdout)
        pytest.fail(f"{len(spurious)} spurious changes (build/engine/spurious-diff.txt):\n{diff.stdout[-6000:]}")
    res = life.ws.pulumi("up", "--yes", "--expect-no-changes")
    FIGURES["second up seconds"] = round(res.seconds, 1)
    FIGURES["preview seconds (deployed stack)"] = round(seconds, 1)


def test_the_offline_plan_agrees_with_the_engine_on_every_input(life: Life) -> None:
    """After `up` every input is known to the engine: the plan's must equal them."""
    rec, _ = offline_plan.build_plan(life.ws.stack_file)
    plan = compare.from_plan([d.as_json() for d in rec.declared])
    engine = compare.from_preview(json.loads((ARTIFACTS / "preview-after-up.json").read_text()))
    result = compare.compare(plan, engine)
    artifact("plan-vs-engine.txt", result.report() + "\n")
    FIGURES["mock plan / engine mismatches"] = result.mismatches
    FIGURES["mock plan / engine resources compared"] = result.compared
    assert result.mismatches == 0, result.report()


# The one `get` of the program (the chart's registry secret, read back after the release).
READ_SECRET = "csghub-registry-secret"


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f"{path}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, sub in enumerate(value) for k, v in _flat(sub, f"{path}[{i}]").items()}
    return {path: value}


def _state(life: Life) -> dict[str, dict[str, Any]]:
    doc = json.loads(life.ws.pulumi("stack", "export", "--show-secrets").stdout)
    return {r["urn"]: r for r in doc["deployment"]["resources"]}


def test_refresh_changes_nothing(life: Life) -> None:
    """`pulumi refresh --expect-no-changes`: no object drifted from what the engine recorded.

    Known, and checked to be exactly that: the Kubernetes provider reports the program's one
    `get` (the registry Secret) as updated on the first refresh after an `up`. Its Read fills
    the provider's bookkeeping output `__inputs` from the live object when it reads with no
    previous state (the `get` during `up`) and prunes it to the old inputs on a refresh, and
    the engine diffs a read resource's outputs. The Secret itself is unchanged."""
    before = _state(life)
    res = life.ws.pulumi("refresh", "--yes", "--diff", "--expect-no-changes", check=False)
    artifact("refresh.txt", res.stdout)
    FIGURES["refresh seconds"] = round(res.seconds, 1)
    after = _state(life)
    changed: dict[str, list[str]] = {}
    for urn in sorted(set(before) | set(after)):
        a, b = _flat(before.get(urn)), _flat(after.get(urn))
        paths = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k != ".modified")
        if paths:
            changed[urn.split("::")[-1]] = paths
    artifact("refresh-state-changes.json", json.dumps(changed, indent=2) + "\n")
    # Drift is a change of a managed resource's inputs (what refresh reads back from the live
    # object); outputs such as a PersistentVolume's status.phase move as controllers work.
    drift = {n: [p for p in paths if p.startswith(".inputs")] for n, paths in changed.items() if n != READ_SECRET}
    drift = {n: paths for n, paths in drift.items() if paths}
    if READ_SECRET in changed and not _only_bookkeeping(changed[READ_SECRET]):
        drift[READ_SECRET] = changed[READ_SECRET]
    FIGURES["changes on refresh (drift)"] = len(drift)
    FIGURES["updates refresh reports"] = 0 if res.returncode == 0 else f"1 ({READ_SECRET}: provider bookkeeping)"
    assert not drift, drift
    if res.returncode != 0:
        # the one update it may report is the known one, and nothing else
        reported = [line for line in res.stdout.splitlines() if line.lstrip().startswith("~ kubernetes:")]
        assert changed.get(READ_SECRET) and len(reported) == 2, res.stdout  # once in the preview, once applied
        assert all("core/v1:Secret" in line for line in reported), reported


def _only_bookkeeping(paths: list[str]) -> bool:
    """Only the provider's `__inputs` output and the read's inputs (gvk, name, namespace) moved."""
    inputs = {".inputs.apiVersion", ".inputs.kind", ".inputs.metadata.name", ".inputs.metadata.namespace"}
    return all(p.startswith(".outputs.__inputs.") or p in inputs for p in paths)


def test_one_config_change_previews_as_exactly_that_change(life: Life) -> None:
    life.ws.pulumi("config", "set", "--path", "ai-platform:knative.kourier.serviceType", "LoadBalancer")
    diff = life.ws.pulumi("preview", "--diff")
    artifact("change-diff.txt", diff.stdout)
    preview, _ = preview_json(life)
    artifact("change.json", json.dumps(preview, indent=2) + "\n")
    steps = changes(preview)
    assert [(s["op"], s["urn"].split("::")[-1]) for s in steps] == [("update", CHANGED)], diff.stdout
    detailed = steps[0].get("detailedDiff") or {}
    assert sorted(detailed) == ["spec.ingress.kourier.service-type"], detailed
    life.ws.pulumi("up", "--yes")
    ks = life.cluster.get("knativeserving", "knative-serving", "-n", "knative-serving")
    assert ks["spec"]["ingress"]["kourier"]["service-type"] == "LoadBalancer"
    life.ws.pulumi("preview", "--expect-no-changes")


def test_destroy_refuses_protected_resources(life: Life) -> None:
    res = life.ws.pulumi("destroy", "--yes", check=False)
    artifact("destroy-refused.txt", res.stdout + res.stderr)
    assert res.returncode != 0
    assert "protect" in (res.stdout + res.stderr)
    # Refused as a whole: nothing was deleted.
    assert life.cluster.inventory() == life.after_up


def test_destroy_removes_what_the_stack_created_and_nothing_else(life: Life) -> None:
    life.ws.pulumi("state", "unprotect", "--all", "--yes")
    res = life.ws.pulumi("destroy", "--yes")
    artifact("destroy.txt", res.stdout)
    FIGURES["destroy seconds"] = round(res.seconds, 1)
    c = life.cluster
    # Namespaces finish deleting (the namespace controller) before the comparison.
    deadline = time.monotonic() + 300
    while c.inventory() != life.before and time.monotonic() < deadline:
        time.sleep(1)  # polling a condition, not a synchronisation
    after = c.inventory()
    assert after == life.before, {"left behind": sorted(after - life.before), "removed": sorted(life.before - after)}
    # The patched packaged objects are back to what they were (their fields are ours no more).
    assert "ai-platform.io/coredns-custom-sha256" in life.packaged_after_up["coredns template"]
    assert packaged(c) == life.packaged_before
    state = json.loads(life.ws.pulumi("stack", "export").stdout)
    assert [r["type"] for r in state["deployment"].get("resources") or []] == []
