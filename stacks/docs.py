"""Generate the config reference from the model: docs/config.schema.json, docs/config.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from config.load import NAMESPACE
from config.stack import StackConfig


def schema() -> dict[str, Any]:
    return StackConfig.model_json_schema(by_alias=True, mode="validation")


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        kinds = [_type(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(kinds)
    if "enum" in prop:
        return " or ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    t = prop.get("type", "any")
    if t == "array":
        return f"list[{_type(prop.get('items', {}), defs)}]"
    if t == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
        return f"map[{_type(prop['additionalProperties'], defs)}]"
    if prop.get("format") == "password":
        return "secret"
    return str(t)


def _rows(model: dict[str, Any], defs: dict[str, Any], prefix: str, out: list[str], seen: set[str]) -> None:
    for name, prop in model.get("properties", {}).items():
        key = f"{prefix}.{name}" if prefix else name
        typ = _type(prop, defs)
        secret = "yes" if typ == "secret" else ""
        default = prop.get("default")
        default_s = "" if default is None else f"`{json.dumps(default)}`"
        typ = typ.replace("|", "\\|")
        required = "yes" if name in model.get("required", []) else ""
        desc = (prop.get("description") or "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{NAMESPACE}:{key}` | {typ} | {required} | {secret} | {default_s} | {desc} |")
        refs = [prop] + prop.get("anyOf", []) + ([prop["items"]] if "items" in prop else [])
        for r in refs:
            ref = r.get("$ref") or (r.get("items") or {}).get("$ref")
            if ref:
                target = ref.rsplit("/", 1)[-1]
                sub = f"{key}[]" if r is prop.get("items") or "items" in r else key
                if (target, sub) in seen:  # type: ignore[comparison-overlap]
                    continue
                _rows(defs[target], defs, sub, out, seen)


def markdown() -> str:
    s = schema()
    defs = s.get("$defs", {})
    lines = [
        "# Configuration reference",
        "",
        "Generated from `config/` by `python -m stacks schema` — do not edit by hand;",
        "`tests/unit/test_docs.py` fails when it is stale. Keys are written in `Pulumi.<stack>.yaml`",
        f"under `config:` as `{NAMESPACE}:<key>` objects. Secret fields take `secure:` values",
        "(`pulumi config set --secret --path ...`); `secure:` on any other field is an error.",
        "",
        "| key | type | required | secret | default | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    _rows(s, defs, "", lines, set())
    return "\n".join(lines) + "\n"


def rendered() -> dict[str, str]:
    return {
        "config.schema.json": json.dumps(schema(), indent=2, sort_keys=True) + "\n",
        "config.md": markdown(),
    }


def write_docs(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written
