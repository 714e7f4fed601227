"""The values.schema.json of a chart release, found before anything is registered.

A local chart (`chart.localPath`, airgap) is checked against the schema it carries; a chart
from a repository against the copy shipped in `components/schemas/` for its pinned version
(see the README there). Subcharts (CSGHub's `runner` and `dataflow`) use the shipped schema
of the parent's version. Helm validates the same values again at install.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from config.base import ChartSource

SCHEMA_DIR = Path(__file__).parent / "schemas"


@dataclass(frozen=True)
class Schema:
    schema: dict[str, Any]
    origin: str  # where it came from, for messages

    def errors(self, values: dict[str, Any]) -> list[str]:
        """Every violation as `path.to.value: message`, sorted (deterministic)."""
        found = jsonschema.Draft7Validator(self.schema).iter_errors(values)
        return sorted(f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in found)


def shipped(chart: str, version: str) -> Schema | None:
    """The shipped schema of CHART at VERSION, if there is one."""
    path = SCHEMA_DIR / f"{chart}-{version}.values.schema.json"
    if not path.is_file():
        return None
    return Schema(json.loads(path.read_text()), f"chart {chart} {version} (components/schemas/{path.name})")


def local_chart_schema(chart_path: Path) -> dict[str, Any] | None:
    """values.schema.json of a local chart (directory or .tgz), if it has one."""
    if chart_path.is_dir():
        f = chart_path / "values.schema.json"
        return json.loads(f.read_text()) if f.is_file() else None
    if chart_path.is_file():
        with tarfile.open(chart_path) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "values.schema.json":
                    fh = tar.extractfile(member)
                    return json.loads(fh.read()) if fh else None
    return None


def for_chart(source: ChartSource, base_dir: Path) -> Schema | None:
    """The schema a release of SOURCE is validated against, or None when none is known."""
    if source.local_path:
        path = Path(source.local_path).expanduser()
        path = path if path.is_absolute() else base_dir / path
        local = local_chart_schema(path)
        if local is not None:
            return Schema(local, f"the local chart {source.local_path}")
    return shipped(source.name, source.version)
