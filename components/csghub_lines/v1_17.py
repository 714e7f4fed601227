"""CSGHub chart line 1.17.x (the seeds' line; ../shared/CHARTS.md, *Seed 000's steps on
the 1.17 chart*): flat runner keys, scale-to-zero as a string, Kourier from the runner's
Knative Operator (its service type pinned by the program after every upgrade), Dataflow with
PostgreSQL, Redis and MongoDB."""

from __future__ import annotations

from typing import Any

from components.gpu import PRODUCT_LABEL
from config.csghub import Csghub
from config.knative import Knative

TWO_X_KEYS = ("knativeIngress", "volcano", "agentSandbox")


class Line117:
    name: str = "1.17"
    databases: tuple[str, ...] = (
        "csghub_casdoor",
        "csghub_temporal",
        "csghub_server",
        "csghub_portal",
        "csghub_dataflow",
        "csghub_label_studio",
        "csghub_csgship",
        "csghub_xnet",
    )

    services: tuple[str, ...] = ("postgresql", "redis", "mongo", "objectStore", "registry", "gitaly")

    def runner_values(
        self, knative: Knative, csghub: Csghub, storage_class: str | None, gpu_resource: str
    ) -> dict[str, Any]:
        runner: dict[str, Any] = {
            "knative": {
                "serving": {
                    "domain": knative.domain,
                    "autoscaler": {
                        "enableScaleToZero": "true" if knative.scale_to_zero else "false",
                        "scaleToZeroGracePeriod": knative.scale_to_zero_grace_period,
                    },
                }
            }
        }
        if storage_class:
            runner["storageClassName"] = storage_class
        if csghub.gpu:
            runner["gpuModelLabel"] = {"typeLabel": PRODUCT_LABEL, "capacityLabel": gpu_resource}
        return runner

    def kourier_pinned(self, csghub: Csghub) -> bool:
        return True

    def dataflow_databases(self) -> tuple[str, ...]:
        return ("postgresql", "redis", "mongo")

    def problems(self, cfg: Any) -> list[tuple[str, str]]:
        c = cfg.csghub
        return [
            (f"csghub.{key}", f"is a CSGHub 2.x key; chart {c.chart.version} (the 1.17 line) has no such setting")
            for key, value in (
                ("knativeIngress", c.knative_ingress),
                ("volcano", c.volcano),
                ("agentSandbox", c.agent_sandbox),
            )
            if value is not None
        ]


LINE = Line117()
