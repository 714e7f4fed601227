"""`make plan-diff BASE=<git ref> STACK=<stack>` — what a pull request changes in the plan.

Renders the offline plan of the base ref (in a temporary `git worktree`) and of the
working tree, and prints Markdown (a GitHub job summary): first, in bold, what replaces a
resource, re-runs a node script or touches protected data; then per layer every added,
removed or changed key (old → new; secrets as keyed masks, so a changed secret shows as a
changed mask), a node script's change as its arguments and one diff of its text. This
compares two desired states; `pulumi preview` compares against the live stack.

Files a stack names on the provisioner (the airgap bundle, CA files) need not be here: the
plan is a review and records them as absent (a base ref from before review plans gets
empty placeholders in its temporary copy, and the output says so).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{path}[{i}]"))
        return out
    return {path: value}


def _short(v: Any, limit: int = 80) -> str:
    text = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Inputs whose change replaces the resource (the rest update in place).
REPLACE_KEYS = {
    "command:remote:Command": ("triggers",),
    "command:remote:CopyToRemote": ("triggers", "remotePath"),
    "kubernetes:helm.sh/v3:Release": ("name", "namespace"),
}
RERUN_KEYS = ("create", "stdin", "stdinView", "connection", "update")


def effect(typ: str, keys: set[str]) -> str:
    roots = {k.split(".")[0].split("[")[0] for k in keys}
    replace = REPLACE_KEYS.get(typ, ())
    if typ.startswith("kubernetes:") and typ != "kubernetes:helm.sh/v3:Release":
        replace = ("metadata.name", "metadata.namespace")
        if any(k in keys for k in replace):
            return "replace"
        return "update"
    if any(r in roots for r in replace):
        return "replace" + (" (runs delete, then create)" if typ == "command:remote:Command" else "")
    if typ == "command:remote:Command" and roots & set(RERUN_KEYS):
        return "update: re-runs the node script"
    return "update"


SCRIPT_KEYS = ("create", "update", "delete")
SCRIPT_DIFF_LINES = 40


def _absent(v: Any) -> str:
    return _short("(absent)" if v is None else v)


def _parts(marker: str, old: str, new: str, name: str) -> list[tuple[str, str, str]]:
    """(part, old, new) for the shared lib.sh and the script's own text (split where the
    renderer marks the script's start), or the whole text when unmarked."""
    if marker in old and marker in new:
        o_lib, o_own = old.split(marker, 1)
        n_lib, n_own = new.split(marker, 1)
        return [("lib.sh", o_lib, n_lib), (f"{name} text", o_own, n_own)]
    return [("script text", old, new)]


def normalize(resources: list[dict[str, Any]], scripts: dict[str, str]) -> list[dict[str, Any]]:
    """Plans of either format alike: a node command's full text (older plans) becomes the
    script reference newer plans write, its text into SCRIPTS."""
    from stacks.plan import script_ref, split_command

    out = []
    for r in resources:
        if r.get("type") == "command:remote:Command":
            inputs = dict(r.get("inputs") or {})
            for field in SCRIPT_KEYS:
                text = inputs.get(field)
                if isinstance(text, str) and (ref := script_ref(text)) is not None:
                    scripts[ref["script"]] = split_command(text)[1]
                    inputs[field] = ref
            r = {**r, "inputs": inputs}
        out.append(r)
    return out


def _ref_change(
    key: str,
    old: Any,
    new: Any,
    where: str,
    scripts: tuple[dict[str, str], dict[str, str]],
    shown: dict[tuple[str, str], str],
) -> list[str]:
    """A node command's change, from script references: arguments old → new, and the
    script's text diff (printed once however many commands run it)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        if old is None and isinstance(new, dict):
            return [f"    {key}: (absent) → runs {new['script']}"]
        if new is None and isinstance(old, dict):
            return [f"    {key}: runs {old['script']} → (absent)"]
        return [f"    {key}: {_absent(old)} → {_absent(new)}"]
    out = []
    o_name, n_name = old["script"].split("@")[0], new["script"].split("@")[0]
    if (o_name, old.get("sudo")) != (n_name, new.get("sudo")):
        sudo = {True: " with sudo", False: ""}
        out.append(
            f"    {key}: runs {n_name}.sh{sudo[bool(new.get('sudo'))]} (was {o_name}.sh{sudo[bool(old.get('sudo'))]})"
        )
    o_args, n_args = old.get("args") or {}, new.get("args") or {}
    for a in sorted(o_args.keys() | n_args.keys()):
        if o_args.get(a) != n_args.get(a):
            out.append(f"    {key} {n_name}.sh {a}: {_absent(o_args.get(a))} → {_absent(n_args.get(a))}")
    if old["script"] != new["script"]:
        o_text, n_text = scripts[0].get(old["script"], ""), scripts[1].get(new["script"], "")
        marker = f"# ---- {n_name}.sh ----\n"
        for part, o_part, n_part in _parts(marker, o_text, n_text, f"{n_name}.sh"):
            if o_part == n_part:
                continue
            label = f"    {key} {n_name}.sh: {part} changed"
            seen = shown.get((o_part, n_part))
            if seen is not None:
                out.append(f"{label}, as in {seen}")
                continue
            shown[(o_part, n_part)] = where
            udiff = list(difflib.unified_diff(o_part.splitlines(), n_part.splitlines(), lineterm="", n=1))[2:]
            more = len(udiff) - SCRIPT_DIFF_LINES
            out.append(f"{label}:")
            out += [f"      {line}" for line in udiff[:SCRIPT_DIFF_LINES]]
            if more > 0:
                out.append(f"      … {more} more lines (build/plan/<stack>/scripts/{new['script']})")
    return out


def diff(
    base: list[dict[str, Any]],
    head: list[dict[str, Any]],
    scripts: tuple[dict[str, str], dict[str, str]] | None = None,
) -> list[str]:
    texts: tuple[dict[str, str], dict[str, str]] = scripts or ({}, {})
    base, head = normalize(base, texts[0]), normalize(head, texts[1])
    b = {f"{r['type']}::{r['name']}": r for r in base}
    h = {f"{r['type']}::{r['name']}": r for r in head}
    lines: list[str] = []
    shown: dict[tuple[str, str], str] = {}  # script change (old, new) → where it was printed
    for key in sorted(h.keys() - b.keys()):
        lines.append(f"+ {key}")
    for key in sorted(b.keys() - h.keys()):
        lines.append(f"- {key}" + ("  (runs its delete script)" if key.startswith("command:remote:Command") else ""))
    for key in sorted(b.keys() & h.keys()):
        b_in, h_in = dict(b[key]["inputs"]), dict(h[key]["inputs"])
        refs = {
            f: (b_in.pop(f, None), h_in.pop(f, None)) for f in SCRIPT_KEYS if h[key]["type"] == "command:remote:Command"
        }
        old, new = flatten(b_in), flatten(h_in)
        opts_old = {k: v for k, v in b[key].items() if k not in ("inputs",)}
        opts_new = {k: v for k, v in h[key].items() if k not in ("inputs",)}
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        changed |= {f for f, (o, n) in refs.items() if o != n}
        opt_changed = {k for k in opts_old.keys() | opts_new.keys() if opts_old.get(k) != opts_new.get(k)}
        if not changed and not opt_changed:
            continue
        typ = h[key]["type"]
        lines.append(f"~ {key}  [{effect(typ, changed) if changed else 'options only'}]")
        for k in sorted(changed):
            if k in refs:
                lines += _ref_change(k, refs[k][0], refs[k][1], f"{h[key]['name']}.{k}", texts, shown)
            else:
                lines.append(f"    {k}: {_short(old.get(k, '(absent)'))} → {_short(new.get(k, '(absent)'))}")
        for k in sorted(opt_changed):
            lines.append(f"    ({k}): {_short(opts_old.get(k))} → {_short(opts_new.get(k))}")
    return lines


def plan_resources(project: Path, stack: str, notes: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Plan `stack` in `project` (a checkout): its resources and its node scripts' texts."""
    stack_file = project / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        notes.append(f"{project.name}: no Pulumi.{stack}.yaml (stack absent at this ref)")
        return [], {}
    with tempfile.TemporaryDirectory() as out_dir:
        for _ in range(3):
            proc = subprocess.run(
                [sys.executable, "-m", "stacks.plan", str(stack_file), "--out", out_dir],
                cwd=project,
                capture_output=True,
                text=True,
            )
            # A ref from before review plans refuses absent provisioner files: placeholders.
            missing = re.findall(r"ai-platform:\S+: file not found on the provisioner: (\S+)", proc.stderr)
            if proc.returncode == 0 or not missing:
                break
            for rel in missing:
                path = project / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("placeholder for plan-diff\n")
                notes.append(f"{project.name}: placeholder for missing provisioner file {rel}")
        if proc.returncode != 0 and not (Path(out_dir) / "resources.json").is_file():
            raise SystemExit(f"plan of {project} failed:\n{proc.stderr or proc.stdout}")
        if proc.returncode != 0:
            notes.append(f"{project.name}: rules broken:\n{proc.stdout.split('rules:', 1)[-1]}")
        data: list[dict[str, Any]] = relative_to(json.loads((Path(out_dir) / "resources.json").read_text()), project)
        scripts_dir = Path(out_dir) / "scripts"
        texts = {p.name: p.read_text() for p in scripts_dir.glob("*.sh")} if scripts_dir.is_dir() else {}
        files_json = Path(out_dir) / "files.json"
        if files_json.is_file():  # the provisioner's files, as a pseudo-resource: replacing one shows
            facts = json.loads(files_json.read_text())
            data.append({"type": "provisioner", "name": "files", "inputs": facts, "protect": False})
            absent = sorted(k for k, f in facts.items() if f.get("size") is None)
            if absent and project.name == "head":
                notes.append(f"absent here — required at pulumi up: {', '.join(absent)}")
        return data, texts


def relative_to(value: Any, project: Path) -> Any:
    """Paths inside the (temporary) checkout as relative paths: the base and head copies sit
    in different directories, and an upload's source path is not a change."""
    prefix = f"{project}/"
    if isinstance(value, str):
        return value[len(prefix) :] if value.startswith(prefix) else value
    if isinstance(value, list):
        return [relative_to(v, project) for v in value]
    if isinstance(value, dict):
        return {k: relative_to(v, project) for k, v in value.items()}
    return value


def layer_of(key: str, by_key: dict[str, dict[str, Any]]) -> str:
    """The top-level component a resource belongs to (its own key when it is one)."""
    cur = by_key.get(key)
    seen = 0
    while cur is not None and cur.get("parent") and not str(cur["parent"]).startswith("pulumi:pulumi:Stack"):
        parent = str(cur["parent"])
        if parent not in by_key or seen > 50:
            return parent
        key, cur = parent, by_key[parent]
        seen += 1
    return key


def report(
    base: list[dict[str, Any]], head: list[dict[str, Any]], texts: tuple[dict[str, str], dict[str, str]]
) -> list[str]:
    """The Markdown report: what matters most in bold first, then the details per layer."""
    lines = diff(base, head, texts)
    by_key = {f"{r['type']}::{r['name']}": r for r in [*base, *head]}
    protected = {k for k, r in by_key.items() if r.get("protect")}
    groups: dict[str, list[str]] = {}
    current: str | None = None
    headline: dict[str, list[str]] = {"replaces": [], "re-runs a node script": [], "touches protected data": []}
    for line in lines:
        if line[:2] in ("+ ", "- ", "~ "):
            key = line[2:].split("  ", 1)[0]
            current = layer_of(key, by_key)
            short = key.split("::", 1)[1]
            if "[replace" in line:
                headline["replaces"].append(short)
            if "re-runs the node script" in line or (line.startswith("- ") and "delete script" in line):
                headline["re-runs a node script"].append(short)
            if key in protected:
                headline["touches protected data"].append(short)
        groups.setdefault(current or "(stack)", []).append(line)
    out: list[str] = []
    for what, names in headline.items():
        if names:
            shown = ", ".join(f"`{n}`" for n in names[:12]) + (
                f" and {len(names) - 12} more" if len(names) > 12 else ""
            )
            out.append(f"- **{what}**: {len(names)} — {shown}")
    if not lines:
        return ["(no change)"]
    for layer, body in groups.items():
        n = sum(1 for line in body if line[:2] in ("+ ", "- ", "~ "))
        out += ["", f"### {layer.split('::', 1)[-1]} ({n} resource{'s' if n != 1 else ''})", "```diff", *body, "```"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.plandiff", description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="git ref to compare against (e.g. origin/main)")
    parser.add_argument("--stack", default="dev")
    args = parser.parse_args(argv)
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        base_dir = Path(tmp) / "base"
        head_dir = Path(tmp) / "head"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_dir), args.base], cwd=ROOT, check=True)
        try:
            shutil.copytree(
                ROOT, head_dir, ignore=shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", ".*_cache")
            )
            base, base_texts = plan_resources(base_dir, args.stack, notes)
            head, head_texts = plan_resources(head_dir, args.stack, notes)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_dir)], cwd=ROOT, check=False)
    print(f"## Plan diff of stack `{args.stack}`: {args.base} → working tree")
    print("Desired state against desired state (offline plans); `pulumi preview` compares with the live stack.")
    print()
    print("\n".join(report(base, head, (base_texts, head_texts))))
    for n in notes:
        print(f"\n> note: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
