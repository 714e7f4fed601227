"""The outputs contract (docs/outputs.md) against what the program exports, and a
consumer program that reads them through a StackReference."""

from __future__ import annotations

import contextvars
import re
import runpy
from typing import Any

import pulumi
from pulumi.runtime import mocks as pmocks
from pulumi.runtime.sync_await import _sync_await

from stacks.mockrun import SECRET
from tests.conftest import ROOT, platform, run_program


def contract() -> dict[str, bool]:
    """output name → whether (part of) it is secret, from the table in docs/outputs.md."""
    rows = {}
    for line in (ROOT / "docs" / "outputs.md").read_text().splitlines():
        m = re.match(r"\| `(\w+)` \| [^|]+ \| ([^|]+) \|", line)
        if m:
            rows[m.group(1)] = m.group(2).strip() != "no"
    return rows


def full_platform() -> dict[str, Any]:
    return platform(dataflow={"enabled": True, "persistence": {"storageClass": "x"}})


def test_every_export_is_in_the_contract_with_its_secrecy() -> None:
    rec = run_program(full_platform())
    table = contract()
    assert set(rec.outputs) <= set(table), set(rec.outputs) - set(table)
    assert rec.outputs["kubeconfig"] == SECRET
    assert rec.outputs["credentials"]["csghub"]["password"] == SECRET
    for name, value in rec.outputs.items():
        if not table[name]:
            assert SECRET not in repr(value), name


def test_contract_names_are_exported_by_a_full_platform() -> None:
    rec = run_program(full_platform())
    missing = {k for k in contract() if k not in rec.outputs}
    assert missing == set(), f"contract lists outputs the program never exports: {missing}"


class ConsumerMocks(pmocks.Mocks):
    def __init__(self, outputs: dict[str, Any]) -> None:
        self.outputs = outputs
        self.created: list[tuple[str, str, dict[str, Any]]] = []

    def new_resource(self, args: pmocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.created.append((args.typ, args.name, args.inputs))
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {
                "name": args.name,
                "outputs": self.outputs,
                "secretOutputNames": ["kubeconfig", "credentials"],
            }
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pmocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def run_consumer(outputs: dict[str, Any]) -> tuple[ConsumerMocks, dict[str, Any]]:
    def go() -> tuple[ConsumerMocks, dict[str, Any]]:
        from pulumi.runtime import config as rc
        from pulumi.runtime.stack import run_pulumi_func

        rc.set_all_config({"ai-platform-consumer:platformStack": "org/ai-platform/dev"})
        mocks = ConsumerMocks(outputs)
        pmocks.set_mocks(mocks, project="ai-platform-consumer", stack="test", preview=False)
        exported: dict[str, Any] = {}
        real = pulumi.export
        pulumi.export = lambda n, v: exported.__setitem__(n, v)  # type: ignore[assignment]
        try:
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "examples/consumer/__main__.py"))))

            async def resolve() -> dict[str, Any]:
                return {k: (await v.future(), await v.is_secret()) for k, v in exported.items()}

            return mocks, _sync_await(resolve())
        finally:
            pulumi.export = real  # type: ignore[assignment]

    return contextvars.Context().run(go)


def test_consumer_reads_the_real_outputs_through_a_stack_reference() -> None:
    rec = run_program(full_platform())
    outputs = dict(rec.outputs)
    # What a real backend holds where the plan shows [secret].
    outputs["kubeconfig"] = "apiVersion: v1\nkind: Config\n"
    outputs["credentials"] = {"csghub": {"username": "admin", "password": "s3cr3t"}}
    mocks, exported = run_consumer(outputs)
    assert exported["portal"] == (rec.outputs["urls"]["portal"], False)
    assert exported["adminUser"] == ("admin", True)
    assert exported["adminPassword"] == ("s3cr3t", True)
    assert ("kubernetes:core/v1:Namespace", "team-ml") in [(t, n) for t, n, _ in mocks.created]
