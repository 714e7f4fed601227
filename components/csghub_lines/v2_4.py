"""CSGHub chart line 2.4.x (../shared/CHARTS.md, *The 2.x line*): runner keys nested
(`runner.runner.*`, `runner.space.*`, `runner.model.*`), `enableScaleToZero` a boolean and
`scaleToZeroPodRetentionPeriod`, Knative through the same Envoy Gateway by default
(`runner.knative.serving.ingress: gateway-api`, no Kourier to pin) or Kourier; Volcano off
by default; agent-sandbox installed; Dataflow on PostgreSQL only (MongoDB gone in 2.0, Redis
in 2.2); the built-in PostgreSQL gains csghub_agenticflow and csghub_superset. The schemas
ignore unknown keys, so every key here is checked against the 2.4 values.yaml by a test."""

from __future__ import annotations

from typing import Any

from components.csghub_lines.v1_17 import LINE as V117
from components.gpu import PRODUCT_LABEL
from config.csghub import Csghub
from config.knative import Knative

NEW_DATABASES = ("csghub_agenticflow", "csghub_superset")


class Line24:
    name: str = "2.4"
    databases: tuple[str, ...] = (*V117.databases, *NEW_DATABASES)

    # no MongoDB on 2.x (global.mongo is gone)
    services: tuple[str, ...] = tuple(s for s in V117.services if s != "mongo")

    def ingress(self, csghub: Csghub) -> str:
        return csghub.knative_ingress or "gateway-api"

    def runner_values(
        self, knative: Knative, csghub: Csghub, storage_class: str | None, gpu_resource: str
    ) -> dict[str, Any]:
        runner: dict[str, Any] = {
            "volcano": {"enabled": bool(csghub.volcano)},
            "knative": {
                "serving": {
                    "domain": knative.domain,
                    "ingress": self.ingress(csghub),
                    "autoscaler": {
                        "enableScaleToZero": knative.scale_to_zero,
                        "scaleToZeroPodRetentionPeriod": knative.scale_to_zero_grace_period,
                    },
                }
            },
        }
        if storage_class:  # honoured on 2.x (1.17 ignored it)
            runner["runner"] = {"storageClassName": storage_class}
        if csghub.gpu:
            runner["space"] = {"gpuModelLabel": {"typeLabel": PRODUCT_LABEL, "capacityLabel": gpu_resource}}
        return runner

    def kourier_pinned(self, csghub: Csghub) -> bool:
        return self.ingress(csghub) == "kourier"

    def dataflow_databases(self) -> tuple[str, ...]:
        return ("postgresql",)

    def problems(self, cfg: Any) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        c = cfg.csghub
        df = cfg.dataflow
        if c.agent_sandbox is False:
            out.append(
                (
                    "csghub.agentSandbox",
                    "chart 2.4.0's values.yaml has no key that switches the agent-sandbox subchart off (its "
                    "templates were not checked here): leave it unset or true",
                )
            )
        if c.services.mongo is not None:
            out.append(("csghub.services.mongo", "CSGHub 2.x has no MongoDB (removed in 2.0): remove it"))
        if df.enabled:
            for kind, since in (("mongo", "2.0"), ("redis", "2.2")):
                if getattr(df.databases, kind).mode == "external":
                    out.append(
                        (
                            f"dataflow.databases.{kind}",
                            f"Dataflow on CSGHub 2.x uses PostgreSQL only ({kind} was removed in {since}): remove it",
                        )
                    )
        external = [("csghub.services.postgresql", c.services.postgresql)]
        if df.enabled:
            external.append(("dataflow.databases.postgresql.external", df.databases.postgresql.external))
        for key, pg in external:
            if pg is None:
                continue
            missing = [db for db in NEW_DATABASES if db not in pg.databases]
            if missing:
                out.append(
                    (
                        f"{key}.databases",
                        f"CSGHub 2.x needs {', '.join(missing)} on the external PostgreSQL (the built-in one creates "
                        "them; an external one must have them, with timescaledb preloaded): create them and list them "
                        "here",
                    )
                )
        local = c.chart.local_path
        if local is not None and not local.endswith(".tgz"):
            out.append(
                (
                    "csghub.chart.localPath",
                    "chart 2.4 vendors no subcharts (all remote): airgap needs the published csghub-2.4.x.tgz, "
                    "not a directory",
                )
            )
        return out


LINE = Line24()
