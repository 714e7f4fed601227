"""The pull-request review job, as GitHub runs it (issue 17): every `run:` step of
.github/workflows/ci.yml's plan-diff job, in a full clone of a repository with two commits
(the base on `main`, the change on a branch), no provisioner files anywhere, the summary
file GitHub gives in GITHUB_STEP_SUMMARY. Only the venv is reused (linked), so the test does
not reinstall the pinned packages."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

MIRROR = "https://mirror.ai.example.org]"
CHANGED = "https://mirror2.ai.example.org]"


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone (fetch-depth 0) of a repository whose `main` is this project's committed state
    and whose checked-out branch changes one mirror endpoint of the prod stack."""
    tmp = tmp_path_factory.mktemp("pr")
    origin = tmp / "origin"
    git(tmp, "clone", "-q", "--no-hardlinks", str(ROOT), str(origin))
    git(origin, "checkout", "-q", "-B", "main")
    remote = tmp / "remote.git"
    git(tmp, "clone", "-q", "--bare", str(origin), str(remote))
    work = tmp / "work"
    git(tmp, "clone", "-q", str(remote), str(work))  # actions/checkout with fetch-depth: 0
    git(work, "checkout", "-q", "-b", "change-mirror")
    prod = work / "Pulumi.prod.yaml"
    text = prod.read_text()
    assert MIRROR in text
    prod.write_text(text.replace(MIRROR, CHANGED, 1))
    git(work, "commit", "-q", "-am", "prod: another docker.io mirror")
    assert not (work / "airgap").exists() and not (work / "certs").exists()
    (work / ".venv").symlink_to(ROOT / ".venv")
    return work


def plan_diff_steps() -> list[str]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    return [step["run"] for step in workflow["jobs"]["plan-diff"]["steps"] if "run" in step]


def test_every_run_step_of_the_plan_diff_job_works_on_a_bare_clone(pull_request: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {**os.environ, "BASE_REF": "main", "GITHUB_STEP_SUMMARY": str(summary), "AIP_CACHE": str(tmp_path / "cache")}
    steps = plan_diff_steps()
    assert len(steps) >= 2
    for script in steps:
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script],
            cwd=pull_request,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"step failed:\n{script}\n{proc.stdout}\n{proc.stderr}"
    text = summary.read_text()
    assert "## Plan diff of stack `dev`: origin/main → working tree" in text
    assert "## Plan diff of stack `prod`: origin/main → working tree" in text
    # the one-line change, as that endpoint on every node's registries step
    change = (
        'stdinView.registries.mirrors.docker.io.endpoint: ["https://mirror.ai.example.org"] → '
        '["https://mirror2.ai.example.org"]'
    )
    assert text.count(change) >= 6, text
    for node in ("server-0", "server-1", "server-2", "agent-0", "agent-1", "gpu-0"):
        assert f"~ command:remote:Command::k3s-prod-{node}-registries  [update: re-runs the node script]" in text
    assert "- **re-runs a node script**" in text
    assert "secret changed" not in text and "(no change)" in text.split("stack `prod`")[0]  # dev unchanged
