"""`make plan STACK=dev|prod` — the offline plan of a stack: its desired state, not a diff.

Validates `Pulumi.<stack>.yaml` exactly as the program does under `pulumi up` (same
key-path errors), evaluates the real program under the SDK's mock runtime
(`stacks/mockrun.py`), checks the rules (`stacks/rules.py`), and writes
`build/plan/<stack>/`:

    resources.json   every resource: type, name, parent, provider, dependencies, inputs,
                     protect, ...; a node command's script named by file and digest with
                     its arguments, and its stdin payload as readable documents
    resources.exact.json  the same with every input exactly as declared
    scripts/<script>-<digest>.sh   each distinct node script text (lib.sh + script), once
    helm/<name>.yaml the values of each Helm release
    files.json       the provisioner's files: path, size, sha256 (null: absent here)
    graph.mmd        dependency order (mermaid)
    outputs.json     the stack outputs
    summary.txt      what is printed

Secrets read `[secret:<digest>]`: a keyed digest (HMAC-SHA256 with a key kept on this
machine, ~/.cache/ai-platform/plan-mask.key), so a changed secret shows as a changed mask
and never as its value or a plain hash of it. Values only `pulumi up` knows read
`<computed at up>`. Deterministic: the same config on the same machine gives the same
bytes. Exit 1 on invalid config or a broken rule.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import yaml

from config.load import ConfigError, from_stack_file, read_stack_file
from stacks import mockrun, rules

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "command:remote:Command"
RELEASE = "kubernetes:helm.sh/v3:Release"


def mask_key() -> bytes:
    """This machine's key for secret masks (made once; never in a plan or in git)."""
    cache = Path(os.environ.get("AIP_CACHE", Path.home() / ".cache" / "ai-platform"))
    path = cache / "plan-mask.key"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(secrets.token_bytes(32))
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_bytes()


def masker() -> mockrun.Mask:
    key = mask_key()
    return lambda text: hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:12]


def build_plan(stack_file: Path) -> tuple[mockrun.Recording, list[rules.Violation]]:
    """A review: the program under mocks, with the provisioner's files recorded (present:
    size and sha256; absent: "required at pulumi up") instead of required."""
    from_stack_file(stack_file, review=True)  # raises ConfigError, like the program would
    raw, encrypted = read_stack_file(stack_file)
    secret_keys = sorted({p.split(".")[0].split("[")[0] for p in encrypted})
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    # the program itself checks the chart values (pulumi.RunError, as in `pulumi up`)
    rec = mockrun.run(
        raw, stack, stack_file.resolve().parent, secret_keys, review=True, keep_secrets=True, mask=masker()
    )
    return rec, rules.check(rec)


def split_command(text: str) -> tuple[str, str, dict[str, str], bool]:
    """`[sudo -n] bash -c SCRIPT NAME k=v...` → (name, script, args, sudo)."""
    words = shlex.split(text)
    sudo = words[:2] == ["sudo", "-n"]
    if sudo:
        words = words[2:]
    if words[:2] != ["bash", "-c"] or len(words) < 4:
        return "", text, {}, sudo
    args = dict(w.split("=", 1) for w in words[4:] if "=" in w)
    return words[3], words[2], args, sudo


def layer_of(d: mockrun.Declared, by_key: dict[str, mockrun.Declared]) -> str:
    """The top-level component a resource belongs to."""
    cur: mockrun.Declared | None = d
    seen = 0
    while cur is not None and cur.parent and not cur.parent.startswith("pulumi:pulumi:Stack") and seen < 50:
        cur = by_key.get(cur.parent)
        seen += 1
    return cur.key if cur is not None else d.key


def mermaid(declared: list[mockrun.Declared]) -> str:
    ids = {d.key: f"r{i}" for i, d in enumerate(declared)}
    lines = ["flowchart TD"]
    for d in declared:
        if not d.custom or d.read:
            continue
        label = f"{d.type.split(':')[-1]}<br/>{d.name}"
        lines.append(f'  {ids[d.key]}["{label}"]')
    for d in declared:
        if not d.custom or d.read:
            continue
        for dep in d.dependencies:
            if dep in ids:
                lines.append(f"  {ids[dep]} --> {ids[d.key]}")
    return "\n".join(lines) + "\n"


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def script_ref(text: str) -> dict[str, Any] | None:
    """A node command as a reference: script name, digest of its text, sudo, arguments."""
    name, script, args, sudo = split_command(text)
    if not name.endswith(".sh"):
        return None
    digest = hashlib.sha256(script.encode()).hexdigest()[:12]
    return {"script": f"{name.removesuffix('.sh')}@{digest}.sh", "sudo": sudo, "args": args}


def payload_view(stdin: Any, mask: mockrun.Mask) -> dict[str, Any] | None:
    """A node command's stdin payload (key=<base64> lines) as readable documents, each
    secret value masked: registries.yaml parsed with its credentials masked, the /etc/hosts
    lines, the CA files by path and digest, the token as a mask."""
    if not isinstance(stdin, str) or not stdin.strip():
        return None
    view: dict[str, Any] = {}
    for line in stdin.splitlines():
        key, _, b64 = line.partition("=")
        text = base64.b64decode(b64).decode()
        if key == "registries":
            view[key] = _mask_registries(yaml.safe_load(text) or {}, mask)
        elif key == "hosts":
            view[key] = text.splitlines()
        elif key == "certs":
            view[key] = {
                path: f"sha256:{hashlib.sha256(base64.b64decode(pem)).hexdigest()[:12]}"
                for path, _, pem in (ln.partition("\t") for ln in text.splitlines())
            }
        else:
            view[key] = f"[secret:{mask(json.dumps(text))}]"
    return view


_REGISTRY_SECRETS = ("password", "auth", "identitytoken", "token")


def _mask_registries(doc: dict[str, Any], mask: mockrun.Mask) -> dict[str, Any]:
    for entry in (doc.get("configs") or {}).values():
        auth = (entry or {}).get("auth") or {}
        for k in _REGISTRY_SECRETS:
            if k in auth:
                auth[k] = f"[secret:{mask(json.dumps(auth[k]))}]"
    return doc


def review_json(d: mockrun.Declared, mask: mockrun.Mask, scripts: dict[str, str]) -> dict[str, Any]:
    """What a reviewer reads of a resource: masked inputs, node scripts by reference (their
    texts into SCRIPTS), the stdin payload as documents."""
    data = d.as_json()
    inputs = dict(d.masked_inputs or d.inputs)
    if d.type == COMMAND:
        for field in ("create", "update", "delete"):
            text = (d.raw_inputs or {}).get(field, inputs.get(field))
            if isinstance(text, str):
                ref = script_ref(text)
                if ref is not None:
                    scripts[ref["script"]] = split_command(text)[1]
                    inputs[field] = ref
        view = payload_view((d.raw_inputs or {}).get("stdin"), mask)
        if view is not None:
            inputs["stdinView"] = view
    data["inputs"] = inputs
    return data


def write_plan(rec: mockrun.Recording, violations: list[rules.Violation], out: Path) -> str:
    if out.exists():
        for p in sorted(out.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    out.mkdir(parents=True, exist_ok=True)
    declared = rec.declared
    mask = masker()
    scripts: dict[str, str] = {}
    (out / "resources.json").write_text(dump([review_json(d, mask, scripts) for d in declared]))
    exact = [{**d.as_json(), "inputs": d.masked_inputs or d.inputs} for d in declared]
    (out / "resources.exact.json").write_text(dump(exact))
    (out / "outputs.json").write_text(dump(rec.outputs))
    (out / "files.json").write_text(
        dump({f.key: {"path": f.given, "size": f.size, "sha256": f.sha256} for f in rec.files})
    )
    (out / "graph.mmd").write_text(mermaid(declared))
    if scripts:
        (out / "scripts").mkdir()
        for name, text in sorted(scripts.items()):
            (out / "scripts" / name).write_text(text)

    releases = []
    for d in rec.by_type(RELEASE):
        (out / "helm").mkdir(exist_ok=True)
        values = (d.masked_inputs or d.inputs).get("values", {})
        (out / "helm" / f"{d.name}.yaml").write_text(yaml.safe_dump(values, sort_keys=True))
        releases.append(f"{d.name}: chart {d.inputs.get('chart')} {d.inputs.get('version', '(local)')}")

    runs = Counter(
        ref["script"]
        for d in rec.by_type(COMMAND)
        for ref in (
            script_ref(t) for t in ((d.raw_inputs or {}).get(f) for f in ("create", "update")) if isinstance(t, str)
        )
        if ref is not None
    )
    by_key = {d.key: d for d in declared}
    per_layer = Counter(layer_of(d, by_key) for d in declared if d.custom)
    nodes = rec.outputs.get("nodes") or []
    lines = [
        f"Plan of stack '{rec.stack}': the desired state the program declares, evaluated offline",
        "under the Pulumi SDK's mock runtime. This is not a diff against a live stack",
        "(that is `pulumi preview`, see `make preview`).",
        "",
        f"resources: {sum(1 for d in declared if d.custom)} ({sum(1 for d in declared if not d.custom)} components)",
    ]
    lines += [f"  {layer}: {n}" for layer, n in sorted(per_layer.items())]
    lines.append(f"nodes: {len(nodes)}" if isinstance(nodes, list) else "nodes: [secret]")
    if isinstance(nodes, list):
        lines += [f"  {n['name']} ({n['role']}) {n['address']}" for n in nodes]
    lines.append(f"helm releases: {len(releases)}")
    lines += [f"  {r}" for r in sorted(releases)]
    lines.append(f"outputs: {', '.join(sorted(rec.outputs))}")
    if runs:
        lines.append(f"node scripts: {len(scripts)} distinct texts in scripts/ (lib.sh + script, by digest)")
        lines += [f"  {name}: run by {n} step{'s' if n != 1 else ''}" for name, n in sorted(runs.items())]
    present = [f for f in rec.files if f.present]
    absent = [f for f in rec.files if not f.present]
    if present:
        lines.append(f"provisioner files: {len(present)}")
        lines += [f"  {f.describe()}" for f in present]
    if absent:
        lines.append(f"absent here — required at pulumi up: {len(absent)}")
        lines += [f"  {f.key}: {f.given}" for f in absent]
    for w in rec.warnings:
        lines.append(f"warning: {w}")
    if violations:
        lines.append(f"rules: {len(violations)} broken")
        lines += [f"  {v}" for v in violations]
    else:
        lines.append(f"rules: all {len(rules.RULES)} hold")
    summary = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(summary)  # no path in it: the same config gives the same bytes
    return summary + f"written to {out}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.plan", description=__doc__.split("\n")[0])
    parser.add_argument("stack", help="stack name (reads Pulumi.<stack>.yaml) or a path to a stack file")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default build/plan/<stack>)")
    args = parser.parse_args(argv)
    stack_file = Path(args.stack)
    if not stack_file.suffix:
        stack_file = ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_file.is_file():
        print(f"no stack file {stack_file}", file=sys.stderr)
        return 1
    try:
        rec, violations = build_plan(stack_file)
    except ConfigError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except pulumi.RunError as err:  # what the program refuses (chart values), as `pulumi up` reports it
        print(err, file=sys.stderr)
        return 1
    out = args.out or ROOT / "build" / "plan" / rec.stack
    print(write_plan(rec, violations, out), end="")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
