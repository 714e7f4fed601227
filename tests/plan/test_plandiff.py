"""Plan diffs for review: added, removed, changed keys, and what each change does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from components import scripts
from stacks.plandiff import diff, effect, relative_to
from tests.conftest import ROOT


def res(typ: str, name: str, **inputs: object) -> dict[str, object]:
    return {"type": typ, "name": name, "inputs": inputs, "protect": False}


CMD = "command:remote:Command"


def test_added_removed_and_changed_with_effects() -> None:
    base = [
        res(CMD, "k3s-a0-install", create="bash -c x version=v1", triggers=["10.0.0.1", "agent"], stdin="[secret]"),
        res(CMD, "k3s-a1-install", create="y", triggers=["10.0.0.2", "agent"]),
        res("kubernetes:core/v1:ConfigMap", "cm", metadata={"name": "a"}, data={"k": "1"}),
    ]
    head = [
        res(CMD, "k3s-a0-install", create="bash -c x version=v2", triggers=["10.0.0.1", "agent"], stdin="[secret]"),
        res(CMD, "k3s-a2-install", create="z", triggers=["10.0.0.3", "agent"]),
        res("kubernetes:core/v1:ConfigMap", "cm", metadata={"name": "a"}, data={"k": "2"}),
    ]
    lines = diff(base, head)
    assert f"+ {CMD}::k3s-a2-install" in lines
    assert f"- {CMD}::k3s-a1-install  (runs its delete script)" in lines
    assert f"~ {CMD}::k3s-a0-install  [update: re-runs the node script]" in lines
    assert "    create: bash -c x version=v1 → bash -c x version=v2" in lines
    assert "~ kubernetes:core/v1:ConfigMap::cm  [update]" in lines
    assert not any("stdin" in line for line in lines), "an unchanged secret is not a change"


def test_node_script_changes_show_arguments_and_each_script_diff_once() -> None:
    def cmd(name: str, version: str, lib_extra: str = "") -> str:
        text = scripts.command_line(name, {"role": "agent", "version": version}, True)
        return text.replace("set -euo pipefail", "set -euo pipefail" + lib_extra, 1)

    names = ["k3s-install.sh", "k3s-install.sh", "k3s-registries.sh"]
    base = [res(CMD, f"c{i}", create=cmd(n, "v1")) for i, n in enumerate(names)]
    head = [res(CMD, f"c{i}", create=cmd(n, "v2", "\nshopt -s inherit_errexit")) for i, n in enumerate(names)]
    lines = diff(base, head)
    assert lines.count("    create k3s-install.sh version: v1 → v2") == 2
    first = lines.index("    create k3s-install.sh: lib.sh changed:")
    assert "      +shopt -s inherit_errexit" in lines[first + 1 : first + 8]
    # the same lib.sh change in every other script: named, not repeated
    assert "    create k3s-install.sh: lib.sh changed, as in c0.create" in lines
    assert "    create k3s-registries.sh: lib.sh changed, as in c0.create" in lines
    assert sum(line.startswith("      +shopt") for line in lines) == 1
    assert not any(len(line) > 200 for line in lines)
    added = diff([res(CMD, "r", create="x")], [res(CMD, "r", create="x", update=cmd("k3s-registries.sh", "v1"))])
    assert any(re.fullmatch(r"    update: \(absent\) → runs k3s-registries@[0-9a-f]{12}\.sh", a) for a in added)


def test_paths_inside_the_checkouts_are_compared_relative() -> None:
    def copy(root: str) -> dict[str, object]:
        return res("command:remote:CopyToRemote", "up", source={"asset": {"path": f"{root}/airgap/k3s"}})

    base = [relative_to(copy("/tmp/x/base"), Path("/tmp/x/base"))]
    head = [relative_to(copy("/tmp/x/head"), Path("/tmp/x/head"))]
    assert base[0]["inputs"] == {"source": {"asset": {"path": "airgap/k3s"}}}
    assert diff(base, head) == []


def test_replacement_effects() -> None:
    assert effect(CMD, {"triggers[0]"}).startswith("replace")
    assert effect("kubernetes:core/v1:Namespace", {"metadata.name"}) == "replace"
    assert effect("kubernetes:helm.sh/v3:Release", {"values.global.edition"}) == "update"
    assert effect("kubernetes:helm.sh/v3:Release", {"namespace"}).startswith("replace")


def test_secret_changes_stay_masked() -> None:
    base = [res(CMD, "c", stdin="[secret]", create="a")]
    head = [res(CMD, "c", stdin="[secret]", create="b")]
    assert all("[secret]" not in line or "→" not in line for line in diff(base, head))


def test_plan_diff_of_head_against_itself_is_empty() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stacks.plandiff", "--base", "HEAD", "--stack", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "stacks", "components", "__main__.py", "Pulumi.dev.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not dirty:
        assert "(no change)" in proc.stdout, proc.stdout
    assert "## Plan diff of stack `dev`" in proc.stdout
