"""open-hydra's host-directory scripts, run for real in a sandbox root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.scripts.sandbox import Sandbox

DIRS = {
    "dataset": "/mnt/public-dataset",
    "course": "/mnt/public-course",
    "jupyterlab": "/mnt/jupyter-lab",
    "vscode": "/mnt/public-vscode",
}
STATE = "var/lib/ai-platform/openhydra/created-dirs"


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sb = Sandbox(tmp_path / "root")
    sb.setup()
    return sb


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def create(sb: Sandbox, **over: str) -> subprocess.CompletedProcess[str]:
    return sb.run("openhydra-host-dirs.sh", {**DIRS, **over})


def remove(sb: Sandbox, **over: str) -> subprocess.CompletedProcess[str]:
    return sb.run("openhydra-host-dirs-remove.sh", {**DIRS, **over})


def test_creates_missing_directories_readable_by_pods_then_changes_nothing(box: Sandbox) -> None:
    out = ok(create(box))
    for path in DIRS.values():
        d = box.root / path.lstrip("/")
        assert d.is_dir(), path
        assert oct(d.stat().st_mode & 0o777) == "0o755", path
        assert f"created {path}" in out
    assert (box.root / STATE).read_text().splitlines() == list(DIRS.values())
    before = box.snapshot()
    assert ok(create(box)).strip().endswith("unchanged")
    assert box.snapshot() == before


def test_existing_directories_are_left_alone_and_never_removed(box: Sandbox) -> None:
    existing = box.root / "mnt/public-course"
    existing.mkdir(parents=True)
    existing.chmod(0o700)
    ok(create(box))
    assert oct(existing.stat().st_mode & 0o777) == "0o700"
    assert "/mnt/public-course" not in (box.root / STATE).read_text().splitlines()
    out = ok(remove(box))
    assert existing.is_dir()
    assert "kept /mnt/public-course (not created by ai-platform)" in out


def test_remove_takes_only_empty_directories_it_created_and_can_run_again(box: Sandbox) -> None:
    ok(create(box))
    data = box.root / "mnt/public-dataset/cifar10"
    data.mkdir()
    out = ok(remove(box))
    assert "kept /mnt/public-dataset (not empty)" in out
    assert data.is_dir()
    for path in ("/mnt/public-course", "/mnt/jupyter-lab", "/mnt/public-vscode"):
        assert not (box.root / path.lstrip("/")).exists()
        assert f"removed {path}" in out
    assert (box.root / STATE).read_text().splitlines() == ["/mnt/public-dataset"]
    ok(remove(box))
    assert data.is_dir()


def test_changed_paths_create_the_new_and_remove_only_the_old(box: Sandbox) -> None:
    ok(create(box))
    ok(create(box, vscode="/srv/vscode"))
    ok(remove(box))  # the old set, as the replaced command's delete runs it
    assert (box.root / "srv/vscode").is_dir()
    assert (box.root / STATE).read_text().splitlines() == ["/srv/vscode"]


@pytest.mark.parametrize("bad", ["relative/dir", "/", "/mnt/../etc", "//mnt/x"])
def test_unsafe_paths_are_refused(box: Sandbox, bad: str) -> None:
    proc = create(box, dataset=bad)
    assert proc.returncode == 1
    assert "dataset=" in proc.stderr


def test_a_file_in_the_way_fails_clearly(box: Sandbox) -> None:
    (box.root / "mnt").mkdir()
    (box.root / "mnt/jupyter-lab").write_text("not a dir")
    proc = create(box)
    assert proc.returncode == 1
    assert "/mnt/jupyter-lab exists and is not a directory" in proc.stderr
