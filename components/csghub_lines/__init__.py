"""CSGHub chart lines: each supported line of the chart (1.17.x, 2.4.x) is one small module
that owns that line's value keys, its Knative handling and its refusals. The builders ask
the line of `csghub.chart.version`; nothing else tests a version.

    v1_17.py   the seeds' line: MongoDB-era Dataflow, Knative through the runner's
               operator with Kourier (pinned by this program after every upgrade)
    v2_4.py    what a team installing today picks: nested runner keys, Knative through
               the same Envoy Gateway by default, Dataflow on PostgreSQL only
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from config.csghub import Csghub
from config.knative import Knative


class ChartLine(Protocol):
    name: str  # "1.17", "2.4"
    # The databases the chart's built-in PostgreSQL creates (an external one needs them too).
    databases: tuple[str, ...]
    # The built-in-or-external services under `global` (global.<service>.enabled/external).
    services: tuple[str, ...]

    def runner_values(
        self, knative: Knative, csghub: Csghub, storage_class: str | None, gpu_resource: str
    ) -> dict[str, Any]: ...

    def kourier_pinned(self, csghub: Csghub) -> bool:
        """Whether the program pins Kourier's service type (the line serves Knative through it)."""
        ...

    def dataflow_databases(self) -> tuple[str, ...]:
        """The Dataflow databases this line's chart can use (postgresql, redis, mongo)."""
        ...

    def problems(self, cfg: Any) -> list[tuple[str, str]]:
        """This line's refusals of a StackConfig: (key, message)."""
        ...


@dataclass(frozen=True)
class Supported:
    pattern: re.Pattern[str]
    line: ChartLine


def _lines() -> list[Supported]:
    from components.csghub_lines import v1_17, v2_4

    return [Supported(re.compile(r"v?1\.17\.\d+"), v1_17.LINE), Supported(re.compile(r"v?2\.4\.\d+"), v2_4.LINE)]


def line_of(version: str) -> ChartLine | None:
    return next((s.line for s in _lines() if s.pattern.fullmatch(version)), None)


def supported() -> str:
    return ", ".join(f"{s.line.name}.x" for s in _lines())
