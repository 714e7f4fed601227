"""The generated config reference is up to date with the model."""

from stacks.docs import rendered
from tests.conftest import ROOT


def test_config_docs_are_current() -> None:
    for name, text in rendered().items():
        path = ROOT / "docs" / name
        assert path.is_file(), f"{path} missing: run `make docs`"
        assert path.read_text() == text, f"{path} is stale: run `make docs`"


def test_reference_lists_every_secret_field() -> None:
    md = (ROOT / "docs" / "config.md").read_text()
    for key in ("cluster.ssh.privateKey", "cluster.k3s.token", "csghub.admin.password", "gateway.tls.key"):
        line = next(line for line in md.splitlines() if f"`ai-platform:{key}`" in line)
        assert "| yes |" in line, line
