"""A consumer of the ai-platform outputs: a namespace on the platform's cluster, and the
portal URL and admin login re-exported for another team's program.

    cd examples/consumer && pulumi config set platformStack my-org/ai-platform/prod && pulumi up
"""

import pulumi
import pulumi_kubernetes as k8s

config = pulumi.Config()
platform = pulumi.StackReference(config.require("platformStack"))

# require_output: fail loudly if the platform stack does not export the name.
kubeconfig = platform.require_output("kubeconfig")
urls = platform.require_output("urls")
credentials = platform.require_output("credentials")

provider = k8s.Provider("platform", kubeconfig=kubeconfig)
team = k8s.core.v1.Namespace(
    "team-ml",
    metadata=k8s.meta.v1.ObjectMetaArgs(name="team-ml"),
    opts=pulumi.ResourceOptions(provider=provider),
)

pulumi.export("portal", urls.apply(lambda u: u["portal"]))
pulumi.export("adminUser", credentials.apply(lambda c: c["csghub"]["username"]))
pulumi.export("adminPassword", pulumi.Output.secret(credentials.apply(lambda c: c["csghub"]["password"])))
pulumi.export("namespace", team.metadata.apply(lambda m: m.name))
