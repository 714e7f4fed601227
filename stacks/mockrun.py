"""Run the real program under the Pulumi SDK's mock runtime and record what it declares.

This is not an engine and does not pretend to be one: it replaces the engine's resource
monitor with `pulumi.runtime.set_mocks`, lets `__main__.py` register its resources, and
keeps, for each registration, what the engine would be asked to create (type, name,
parent, provider, dependencies, inputs, options). Provider-computed values are answered
by `PlanMocks` with clearly fake stand-ins (a kubeconfig pointing at 127.0.0.1, a
registry secret with placeholder credentials), so the program's `apply` chains run.
Secrets stay secrets: a secret input is recorded as `[secret]`, never its value. Only
`run(..., keep_secrets=True)` also keeps each registration's inputs with secrets unwrapped
(`Declared.raw_inputs`), for test drivers that must send the real stdin and connection.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import os
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from config import files

PROJECT = "ai-platform"
PROGRAM = Path(__file__).resolve().parent.parent / "__main__.py"
SECRET = "[secret]"
# What the engine would only know at `pulumi up` (a provider's output, an id): mocks answer
# with this, and unknown values read as it too.
COMPUTED = "<computed at up>"
UNKNOWN = COMPUTED

_SIG = rpc._special_sig_key
_SECRET_SIG = rpc._special_secret_sig
_ASSET_SIG = rpc._special_asset_sig
_ARCHIVE_SIG = rpc._special_archive_sig
_RESOURCE_SIG = rpc._special_resource_sig
_UNKNOWN_VALUE = rpc.UNKNOWN

FAKE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: default
  cluster:
    certificate-authority-data: UExBTi1GQUtFLUNB
    server: https://127.0.0.1:6443
contexts:
- name: default
  context: {cluster: default, user: default}
current-context: default
users:
- name: default
  user:
    client-certificate-data: UExBTi1GQUtFLUNFUlQ=
    client-key-data: UExBTi1GQUtFLUtFWQ==
"""


Mask = Callable[[str], str]


def render_value(value: struct_pb2.Value | Any, mask: Mask | None = None) -> Any:
    """Protobuf value → plain data; secrets become `[secret]` where they are (not pushed up),
    or `[secret:<MASK of the value>]` with a MASK (a keyed digest: a changed secret shows as a
    changed mask, never as its value)."""
    if isinstance(value, struct_pb2.Struct):
        return render_struct(value, mask)
    if isinstance(value, struct_pb2.ListValue):
        return [render_value(v, mask) for v in value.values]
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return render_struct(value.struct_value, mask)
    if kind == "list_value":
        return [render_value(v, mask) for v in value.list_value.values]
    if kind == "string_value":
        return UNKNOWN if value.string_value == _UNKNOWN_VALUE else value.string_value
    if kind == "number_value":
        n = value.number_value
        return int(n) if n.is_integer() else n
    if kind == "bool_value":
        return value.bool_value
    return None


def render_struct(struct: struct_pb2.Struct, mask: Mask | None = None) -> Any:
    fields = struct.fields
    if _SIG in fields:
        sig = fields[_SIG].string_value
        if sig == _SECRET_SIG:
            if mask is None or "value" not in fields:
                return SECRET
            inner = render_value(fields["value"], _UNMASKED)
            return f"[secret:{mask(json.dumps(inner, sort_keys=True))}]"
        if sig == _ASSET_SIG:
            for key in ("path", "uri"):
                if key in fields:
                    return {"asset": {key: fields[key].string_value}}
            return {"asset": {"text-sha256": _sha(fields["text"].string_value) if "text" in fields else None}}
        if sig == _ARCHIVE_SIG:
            return {"archive": {k: render_value(v, mask) for k, v in sorted(fields.items()) if k != _SIG}}
        if sig == _RESOURCE_SIG:
            return {"resource": _short_urn(fields["urn"].string_value)}
    return {k: render_value(v, mask) for k, v in sorted(fields.items())}


def _UNMASKED(text: str) -> str:
    return text


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _short_urn(urn: str) -> str:
    """urn:pulumi:stack::project::parent$type::name → type::name (stable, readable)."""
    parts = urn.split("::")
    if len(parts) < 4:
        return urn
    typ = parts[2].rsplit("$", 1)[-1]
    return f"{typ}::{parts[3]}"


def provider_name(ref: str) -> str | None:
    if not ref:
        return None
    urn = ref.split("::" + ref.rsplit("::", 1)[-1])[0] if ref.count("::") > 3 else ref
    return _short_urn(urn)


@dataclass
class Declared:
    """One resource registration, as the engine would receive it."""

    type: str
    name: str
    custom: bool
    parent: str | None
    provider: str | None
    dependencies: list[str]
    inputs: dict[str, Any]
    protect: bool
    delete_before_replace: bool
    additional_secret_outputs: list[str]
    ignore_changes: list[str]
    read: bool = False  # a `get` of an existing resource, not something to create
    # Inputs with each secret as `[secret:<keyed digest>]`: filled only by run(mask=...).
    masked_inputs: dict[str, Any] = field(default_factory=dict, repr=False)
    # Secrets unwrapped, assets as pulumi.FileAsset/StringAsset: filled only by run(keep_secrets=True).
    raw_inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        return f"{self.type}::{self.name}"

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "custom": self.custom,
            "parent": self.parent,
            "provider": self.provider,
            "dependencies": self.dependencies,
            "protect": self.protect,
            "deleteBeforeReplace": self.delete_before_replace,
            "additionalSecretOutputs": self.additional_secret_outputs,
            "ignoreChanges": self.ignore_changes,
            "read": self.read,
            "inputs": self.inputs,
        }


class PlanMocks(pmocks.Mocks):
    """Answers for values only a provider could compute. All fake, all labelled so.
    STACK_OUTPUTS: what this stack's last update exported (read back by the program through a
    StackReference to itself); none by default, as for a stack never deployed."""

    def __init__(self, stack_outputs: Mapping[str, Any] | None = None) -> None:
        self.stack_outputs = dict(stack_outputs or {})

    def new_resource(self, args: pmocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        typ = args.typ
        if typ == "pulumi:pulumi:StackReference":
            return args.name, {"name": args.inputs.get("name"), "outputs": self.stack_outputs, "secretOutputNames": []}
        if typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"plan-fake-{args.name}"
        elif typ == "command:remote:Command":
            state.setdefault("stdout", FAKE_KUBECONFIG if args.name.endswith("-kubeconfig") else "")
            state.setdefault("stderr", "")
        elif typ == "kubernetes:core/v1:Secret" and args.resource_id:
            state = {
                "metadata": {"name": args.resource_id.split("/")[-1], "namespace": args.resource_id.split("/")[0]},
                "data": {
                    "REGISTRY_USERNAME": base64.b64encode(b"registry").decode(),
                    "REGISTRY_PASSWORD": base64.b64encode(b"plan-fake-registry-password").decode(),
                },
            }
        elif typ == "kubernetes:helm.sh/v3:Release":
            state["status"] = {
                "name": state.get("name", args.name),
                "namespace": state.get("namespace", "default"),
                "revision": COMPUTED,  # Helm counts revisions at install
            }
        if typ.startswith("kubernetes:") and isinstance(state.get("metadata"), dict):
            state["metadata"] = {**state["metadata"], "resourceVersion": COMPUTED}
        elif typ == "kubernetes:core/v1:Service" and args.resource_id:
            state = {"status": {"loadBalancer": {"ingress": []}}, "spec": {}}
        return (args.resource_id or f"{args.name}-id"), state

    def call(self, args: pmocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def _without_resource_refs(struct: struct_pb2.Struct) -> struct_pb2.Struct:
    """A copy of STRUCT with resource references replaced by their short URN (as text), so
    deserializing it never tries to rehydrate (and so register or look up) a resource."""

    def fix(value: Any) -> Any:
        if isinstance(value, struct_pb2.Struct):
            fields = value.fields
            if _SIG in fields and fields[_SIG].string_value == _RESOURCE_SIG:
                return _short_urn(fields["urn"].string_value)
            out = struct_pb2.Struct()
            for k, v in fields.items():
                out[k] = fix(v)
            return out
        if isinstance(value, struct_pb2.ListValue):
            return [fix(v) for v in value.values]
        if isinstance(value, struct_pb2.Value):
            kind = value.WhichOneof("kind")
            if kind == "struct_value":
                return fix(value.struct_value)
            if kind == "list_value":
                return fix(value.list_value)
            if kind == "string_value":
                return value.string_value
            if kind == "number_value":
                return value.number_value
            if kind == "bool_value":
                return value.bool_value
            return None
        return value

    fixed = fix(struct)
    assert isinstance(fixed, struct_pb2.Struct)
    return fixed


def unwrap_secrets(value: Any) -> Any:
    """Deserialized inputs → plain data: secret wrappers removed at any depth, whole numbers
    as int, unknowns as `[unknown]`; assets stay pulumi Asset objects."""
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if type(value).__name__ == "Unknown":
        return UNKNOWN
    return value


def raw_inputs_of(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A registration's inputs with every secret unwrapped (SDK rpc deserialization)."""
    out = unwrap_secrets(rpc.deserialize_properties(_without_resource_refs(struct), keep_unknowns=True))
    return out if isinstance(out, dict) else {}


class RecordingMonitor(pmocks.MockMonitor):
    def __init__(self, mocks: pmocks.Mocks, keep_secrets: bool = False, mask: Mask | None = None) -> None:
        super().__init__(mocks)
        self.declared: list[Declared] = []
        self.urn_names: dict[str, str] = {}
        self.keep_secrets = keep_secrets
        self.mask = mask

    def _record(self, request: Any, read: bool) -> None:
        struct = request.properties if read else request.object
        inputs = render_struct(struct)
        self.declared.append(
            Declared(
                type=request.type,
                name=request.name,
                custom=True if read else bool(request.custom),
                parent=_short_urn(request.parent) if request.parent else None,
                provider=provider_name(request.provider),
                dependencies=sorted({_short_urn(d) for d in getattr(request, "dependencies", [])}),
                inputs=inputs,
                protect=bool(getattr(request, "protect", False)),
                delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
                additional_secret_outputs=sorted(set(getattr(request, "additionalSecretOutputs", []))),
                ignore_changes=sorted(getattr(request, "ignoreChanges", [])),
                read=read,
                raw_inputs=raw_inputs_of(struct) if self.keep_secrets else {},
                masked_inputs=render_struct(struct, self.mask) if self.mask else {},
            )
        )

    def RegisterResource(self, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, read=False)
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    def ReadResource(self, request: Any) -> Any:
        self._record(request, read=True)
        return super().ReadResource(request)  # type: ignore[no-untyped-call]


@dataclass
class Recording:
    stack: str
    declared: list[Declared]
    outputs: dict[str, Any]
    warnings: list[str]
    # A review run's record of the provisioner's files (config/files.py); empty otherwise.
    files: list[files.FileFact] = field(default_factory=list)

    def by_type(self, typ: str) -> list[Declared]:
        return [d for d in self.declared if d.type == typ]

    def get(self, name: str, typ: str | None = None) -> Declared:
        found = [d for d in self.declared if d.name == name and (typ is None or d.type == typ)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}")
        return found[0]


def _config_values(raw: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in raw.items():
        out[f"{PROJECT}:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return out


def _render_output(value: Any) -> Any:
    """Resolve a stack output (known under mocks) into plain data, secrets masked."""

    async def resolve(v: Any) -> Any:
        if isinstance(v, pulumi.Output):
            if await v.is_secret():
                return SECRET
            inner = await v.future(with_unknowns=True)
            return await resolve(inner)
        if isinstance(v, dict):
            return {k: await resolve(x) for k, x in sorted(v.items())}
        if isinstance(v, list | tuple):
            return [await resolve(x) for x in v]
        return v

    return _sync_await(resolve(value))


def run(
    raw_config: Mapping[str, Any],
    stack: str,
    project_dir: Path,
    secret_keys: list[str] | None = None,
    program: Path | None = None,
    keep_secrets: bool = False,
    review: bool = False,
    mask: Mask | None = None,
    stack_outputs: Mapping[str, Any] | None = None,
) -> Recording:
    """Evaluate `__main__.py` under mocks with the given `ai-platform:` config.

    `keep_secrets=True` also fills each `Declared.raw_inputs` with the inputs, secrets
    unwrapped (for a test driver that runs the node commands); `inputs` stay masked.
    `review=True` runs the program as a review (`make plan`): provisioner files that are not
    here are recorded as absent (`Recording.files`) instead of refused.
    """
    return contextvars.Context().run(
        _run, raw_config, stack, project_dir, secret_keys or [], program, keep_secrets, review, mask, stack_outputs
    )


class _Warnings(logging.Handler):
    """Collects what the program logs at warning level (pulumi.log.warn under mocks)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _run(
    raw_config: Mapping[str, Any],
    stack: str,
    project_dir: Path,
    secret_keys: list[str],
    program: Path | None,
    keep_secrets: bool = False,
    review: bool = False,
    mask: Mask | None = None,
    stack_outputs: Mapping[str, Any] | None = None,
) -> Recording:
    from pulumi.runtime import config as rc
    from pulumi.runtime.stack import run_pulumi_func

    record = files.Review() if review else None
    files.REVIEW.set(record)
    rc.set_all_config(_config_values(raw_config), [f"{PROJECT}:{k}" for k in secret_keys])
    mocks = PlanMocks(stack_outputs)
    monitor = RecordingMonitor(mocks, keep_secrets, mask)
    handler = _Warnings()
    logger = logging.getLogger(f"aip.mockrun.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    pmocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor, logger=logger)
    # As the SDK's own mocks.test() does: the runtime keeps every Output of a run in a set it
    # awaits at the end; left over from a run that failed inside an apply, they would fail this one.
    from pulumi.runtime.settings import SETTINGS

    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()

    exported: dict[str, Any] = {}
    real_export = pulumi.export

    def record_export(name: str, value: Any) -> None:
        exported[name] = value
        real_export(name, value)

    main = program or PROGRAM
    sys_path = list(sys.path)
    cwd = os.getcwd()
    pulumi.export = record_export  # type: ignore[assignment]
    try:
        if str(main.parent) not in sys.path:
            sys.path.insert(0, str(main.parent))
        # Like the engine, run the program from the directory of the stack files.
        os.chdir(project_dir)

        def program_func() -> None:
            runpy.run_path(str(main), run_name="__main__")

        _sync_await(run_pulumi_func(program_func))
        outputs = {k: _render_output(v) for k, v in sorted(exported.items())}
    finally:
        os.chdir(cwd)
        pulumi.export = real_export  # type: ignore[assignment]
        sys.path[:] = sys_path
        logger.removeHandler(handler)
    declared = sorted(monitor.declared, key=lambda d: (d.type, d.name))
    facts = sorted(record.facts.values(), key=lambda f: f.key) if record is not None else []
    warnings = list(dict.fromkeys(handler.messages))
    return Recording(stack=stack, declared=declared, outputs=outputs, warnings=warnings, files=facts)
