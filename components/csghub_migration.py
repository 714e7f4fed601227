"""An in-place change of a CSGHub release's chart line (1.17 → 2.4), and what must come first.

Upgrading a 1.17 release to 2.4 is not a values change (../shared/CHARTS.md, end of *The
2.x line*): Envoy Gateway's CRDs must be applied before (Helm never upgrades CRDs); objects
1.17 created as hooks (namespace `knative-serving`, the `KnativeServing`) carry no Helm
ownership metadata and make Helm refuse the upgrade until they are adopted; the old Jobs
must go (their templates are immutable). Upstream documents no procedure.

So the program refuses the change unless `csghub.migration.acknowledge: 1.17-to-2.4`, and
then declares those steps as resources the Release waits for. The line a stack deployed is
a stack output (`csghubChartLine`), read back through a StackReference to the stack itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from config.csghub import Csghub

ACK = "1.17-to-2.4"
HELM_OWNED = {"app.kubernetes.io/managed-by": "Helm"}


def guard(previous: str | None, current: str, acknowledged: str | None) -> str:
    """The Release's description, or a RunError when the line changes unacknowledged."""
    if previous and previous != current:
        wanted = f"{previous}-to-{current}"
        if acknowledged != wanted:
            raise pulumi.RunError(
                f"ai-platform:csghub.chart.version: this stack's CSGHub release is on the {previous} line and the "
                f"config asks for {current}: an in-place change of the chart line is not a values change (Dataflow's "
                "MongoDB data is not migrated, Volcano is removed unless csghub.volcano, casdoor jumps a major "
                f"version). Take the backup README 'CSGHub 2.4' describes, then set "
                f"csghub.migration.acknowledge: {wanted}"
            )
    return f"CSGHub {current} line (ai-platform)"


@dataclass(frozen=True)
class MigrationArgs:
    config: Csghub
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    crds_file: str  # the Envoy Gateway CRDs manifest (URL or local file)


class LineMigration(pulumi.ComponentResource):
    """The pre-steps of a 1.17 → 2.4 upgrade, each declared; `steps` is what the Release waits for."""

    steps: list[pulumi.Resource]

    def __init__(self, name: str, args: MigrationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-platform:index:CsghubLineMigration", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        crds = k8s.yaml.v2.ConfigFile(f"{name}-envoy-gateway-crds", file=args.crds_file, opts=k8s_opts)
        owned = {"meta.helm.sh/release-name": "csghub", "meta.helm.sh/release-namespace": args.namespace}
        force: dict[str, pulumi.Input[str]] = {"pulumi.com/patchForce": "true", **owned}
        namespace = k8s.core.v1.NamespacePatch(
            f"{name}-adopt-knative-namespace",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name="knative-serving", labels=HELM_OWNED, annotations=force),
            opts=k8s_opts,
        )
        serving = k8s.apiextensions.CustomResourcePatch(
            f"{name}-adopt-knative-serving",
            api_version="operator.knative.dev/v1beta1",
            kind="KnativeServing",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(  # type: ignore[arg-type]
                name="knative-serving", namespace="knative-serving", labels=HELM_OWNED, annotations=force
            ),
            opts=k8s_opts,
        )
        jobs = self._remove_old_jobs(name, args, k8s_opts)
        self.steps = [crds, namespace, serving, jobs]
        self.register_outputs({})

    def _remove_old_jobs(self, name: str, args: MigrationArgs, opts: pulumi.ResourceOptions) -> pulumi.Resource:
        """A Job (with an account allowed exactly that) deleting the old release's Jobs."""
        account = k8s.core.v1.ServiceAccount(
            f"{name}-job-remover",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="ai-platform-job-remover", namespace=args.namespace),
            opts=opts,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-job-remover",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="ai-platform-job-remover", namespace=args.namespace),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["batch"], resources=["jobs"], verbs=["list", "delete", "deletecollection"]
                )
            ],
            opts=opts,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-job-remover",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="ai-platform-job-remover", namespace=args.namespace),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=account.metadata.name, namespace=args.namespace)
            ],
            opts=opts,
        )
        script = (
            'kubectl delete jobs -n "$NAMESPACE" -l app.kubernetes.io/managed-by=Helm '
            "--ignore-not-found --wait=true && echo 'old release Jobs removed'"
        )
        spec: dict[str, Any] = {
            "backoffLimit": 3,
            "template": {
                "spec": {
                    "serviceAccountName": "ai-platform-job-remover",
                    "restartPolicy": "OnFailure",
                    "containers": [
                        {
                            "name": "remove",
                            "image": args.config.migration.kubectl_image,
                            "command": ["sh", "-c", script],
                            "env": [{"name": "NAMESPACE", "value": args.namespace}],
                        }
                    ],
                }
            },
        }
        return k8s.batch.v1.Job(
            f"{name}-remove-old-jobs",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="ai-platform-remove-old-jobs", namespace=args.namespace),
            spec=cast(Any, spec),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[binding])),
        )
