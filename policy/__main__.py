"""Policy pack: the rules of `stacks/rules.py`, enforced by the Pulumi engine.

    pulumi preview --policy-pack policy

The offline plan applies the same rules to what the mock runtime records (`make plan`).
One difference: the engine hands policies secret values in clear, so `no-plain-secrets`
(which looks for the plan's secret placeholders) can only fire in the offline plan; the
engine itself keeps secrets encrypted in state.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyPack, StackValidationArgs, StackValidationPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stacks.rules import RULES, View, check_views


def view_of(resource: Any) -> View:
    opts = resource.opts
    return View(
        type=resource.resource_type,
        name=resource.name,
        inputs=dict(resource.props),
        custom=True,
        provider=resource.provider.urn if resource.provider is not None else None,
        protect=bool(opts.protect),
        additional_secret_outputs=tuple(opts.additional_secret_outputs or ()),
    )


def validate(args: StackValidationArgs, report_violation: Any) -> None:
    views = [view_of(r) for r in args.resources if not r.resource_type.startswith("pulumi:providers:")]
    for violation in check_views(views):
        report_violation(str(violation))


PolicyPack(
    name="ai-platform",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name="ai-platform-rules",
            description="; ".join(f"{r.name}: {r.description}" for r in RULES),
            validate=validate,
        )
    ],
)
