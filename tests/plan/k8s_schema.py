"""Strict validation of declared Kubernetes objects against the official OpenAPI schemas
(kubernetes-validate's offline copies), for the Kubernetes version of the pinned K3s."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from kubernetes_validate import utils as kvu
from referencing import Registry, Resource

BUILTIN_GROUPS = re.compile(
    r"^(core|apps|batch|policy|autoscaling|networking\.k8s\.io|storage\.k8s\.io|rbac\.authorization\.k8s\.io|"
    r"apiregistration\.k8s\.io|node\.k8s\.io|scheduling\.k8s\.io|coordination\.k8s\.io|discovery\.k8s\.io|"
    r"apiextensions\.k8s\.io|admissionregistration\.k8s\.io|certificates\.k8s\.io)$"
)


def manifest_of(typ: str, inputs: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """(manifest, is_patch) for a `kubernetes:<group>/<version>:<Kind>` resource, None if not built-in."""
    m = re.fullmatch(r"kubernetes:([^/]+)/([^:]+):(\w+)", typ)
    if not m:
        return None
    group, version, kind = m.groups()
    if not BUILTIN_GROUPS.match(group):
        return None
    patch = kind.endswith("Patch")
    if patch:
        kind = kind[: -len("Patch")]
    api_version = version if group == "core" else f"{group}/{version}"
    body = {k: v for k, v in inputs.items() if v != "[secret]"}  # secrets cannot be seen: not validated
    body["apiVersion"], body["kind"] = api_version, kind
    return body, patch


def validate(manifest: dict[str, Any], k8s_version: str, patch: bool) -> list[str]:
    """Every schema error (strict: unknown fields rejected). Patches may omit required fields."""
    version = [v for v in kvu.all_versions() if kvu.major_minor(v) <= kvu.major_minor(k8s_version)][-1]
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", manifest["apiVersion"])
    schema_dir = f"v{version}-local-strict"
    schema = kvu.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/{manifest['kind'].lower()}-{api}.json", k8s_version
    )
    defs = kvu.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", k8s_version)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    errors = []
    for e in validator.iter_errors(manifest):
        if patch and e.validator == "required":
            continue
        errors.append(f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}")
    return errors
