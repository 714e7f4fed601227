"""open-hydra under the real engine: `pulumi preview` only, with the real upstream manifests.

Why no `up` (tests/engine/stack.py): the layer's InnoDBCluster waits for ONLINE (written only
by the running mysql-operator) and its APIService patch for Available (only when
open-hydra-server answers); no container runs here. A preview needs neither: the real
provider expands the manifests (yaml/v2 ConfigFile) and dry-runs every object whose kind
the API server already serves. The manifests are the pinned upstream files in
../shared/manifests (open-hydra v0.1, open-hydra-ui release-0.1, mysql-operator from the
open-hydra tree).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config.openhydra import OpenhydraManifests
from stacks import plan as offline_plan
from tests.engine import compare
from tests.engine.conftest import ARTIFACTS, EngineCluster
from tests.engine.engine import REPO, EngineEnv, Workspace
from tests.engine.stack import engine_stack

pytestmark = [pytest.mark.engine]

MANIFESTS = REPO.parent / "shared" / "manifests"
LOCAL = {
    "mysqlOperatorCrds": MANIFESTS / "open-hydra-v0.1" / "mysql-operator-crds.yaml",
    "mysqlOperator": MANIFESTS / "open-hydra-v0.1" / "mysql-operator.yaml",
    "openHydra": MANIFESTS / "open-hydra-v0.1" / "install-open-hydra.yaml",
    "reverseProxy": MANIFESTS / "open-hydra-v0.1" / "reverse-proxy.yaml",
    "ui": MANIFESTS / "open-hydra-ui-release-0.1" / "deploy.yaml",
}
CONFIGFILE = "kubernetes:yaml/v2:ConfigFile"


def openhydra_config() -> dict[str, Any]:
    manifests = OpenhydraManifests().model_dump(by_alias=True, exclude_none=True)
    for key, path in LOCAL.items():
        manifests[key] = {**manifests[key], "localPath": str(path)}
    return {"enabled": True, "manifests": manifests}


@pytest.mark.skipif(not all(p.is_file() for p in LOCAL.values()), reason="../shared/manifests is not here")
def test_openhydra_previews_with_the_real_manifests(
    engine_env: EngineEnv, engine_cluster: EngineCluster, tmp_path: Path
) -> None:
    stack = engine_stack(engine_cluster.kubeconfig, engine_cluster.gateway_address, tmp_path)
    plain = {**stack.plain, "ai-platform:openhydra": openhydra_config()}
    ws = Workspace(engine_env, tmp_path, "engine-openhydra")
    ws.init(plain, stack.secrets)

    diff = ws.pulumi("preview", "--diff")
    (ARTIFACTS / "openhydra-preview-diff.txt").write_text(diff.stdout)
    preview = json.loads(ws.pulumi("preview", "--json", "--show-sames").stdout)
    (ARTIFACTS / "openhydra-preview.json").write_text(json.dumps(preview, indent=2) + "\n")
    types = {s["newState"]["type"] for s in preview["steps"] if s.get("newState")}
    assert not [t for t in types if t.startswith(("random:", "command:"))], sorted(types)
    assert CONFIGFILE in types

    # The offline plan has every resource the program registers; the engine also shows what
    # the provider expands each ConfigFile into (the plan records the ConfigFile and its file).
    rec, violations = offline_plan.build_plan(ws.stack_file)
    assert not violations, violations
    plan = compare.from_plan([d.as_json() for d in rec.declared])
    engine = compare.from_preview(preview)
    expanded = {k for k in set(engine) - set(plan) if (engine[k].parent or "").startswith(f"{CONFIGFILE}::")}
    result = compare.compare(plan, {k: v for k, v in engine.items() if k not in expanded})
    (ARTIFACTS / "openhydra-plan-vs-preview.txt").write_text(
        result.report() + f"\n{len(expanded)} objects the provider expanded from the manifests\n"
    )
    assert expanded, "the provider expands the manifests into their objects"
    assert result.mismatches == 0, result.report()
    # Nothing was created: a preview.
    assert not engine_cluster.exists("namespace", "open-hydra")
