"""`make plan-diff BASE=<git ref> STACK=<stack>` — what a pull request changes in the plan.

Renders the offline plan of the base ref (in a temporary `git worktree`) and of the
working tree, and prints, per resource: added, removed, or changed keys (old → new;
secrets stay `[secret]`), and whether the change replaces the resource or re-runs a
node script. This compares two desired states; `pulumi preview` compares against the
live stack (on a machine with the Pulumi CLI).

Files a stack needs on the provisioner (the airgap bundle, CA files) are not in git:
where one is missing, an empty placeholder is created in the temporary copies only,
and the output says so.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MISSING = "file not found"


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
RERUN_KEYS = ("create", "stdin", "connection", "update")


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


def _script_change(key: str, old: Any, new: Any, where: str, shown: dict[tuple[str, str], str]) -> list[str]:
    """A node command's change as its arguments (old → new) and a unified diff of its
    script; a script change already printed for another command is named, not repeated
    (every script carries lib.sh)."""
    from stacks.plan import split_command

    plain = [f"    {key}: {_absent(old)} → {_absent(new)}"]
    if (old is None) != (new is None):  # a script appears or goes
        name = split_command(old or new)[0]
        if name.endswith(".sh"):
            return [f"    {key}: (absent) → runs {name}" if old is None else f"    {key}: runs {name} → (absent)"]
    if not isinstance(old, str) or not isinstance(new, str):
        return plain
    o_name, o_script, o_args, o_sudo = split_command(old)
    n_name, n_script, n_args, n_sudo = split_command(new)
    if not o_name.endswith(".sh") or not n_name.endswith(".sh"):
        return plain  # not a rendered node script
    out = []
    if (o_name, o_sudo) != (n_name, n_sudo):
        sudo = {True: " with sudo", False: ""}
        out.append(f"    {key}: runs {n_name}{sudo[n_sudo]} (was {o_name}{sudo[o_sudo]})")
    for a in sorted(o_args.keys() | n_args.keys()):
        if o_args.get(a) != n_args.get(a):
            out.append(f"    {key} {n_name} {a}: {_absent(o_args.get(a))} → {_absent(n_args.get(a))}")
    marker = f"# ---- {n_name} ----\n"
    for part, o_text, n_text in _parts(marker, o_script, n_script, n_name):
        if o_text == n_text:
            continue
        label = f"    {key} {n_name}: {part} changed"
        seen = shown.get((o_text, n_text))
        if seen is not None:
            out.append(f"{label}, as in {seen}")
            continue
        shown[(o_text, n_text)] = where
        udiff = list(difflib.unified_diff(o_text.splitlines(), n_text.splitlines(), lineterm="", n=1))[2:]
        more = len(udiff) - SCRIPT_DIFF_LINES
        out.append(f"{label}:")
        out += [f"      {line}" for line in udiff[:SCRIPT_DIFF_LINES]]
        if more > 0:
            out.append(f"      … {more} more lines (build/plan/<stack>/scripts/ has the new text)")
    return out or plain


def diff(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> list[str]:
    b = {f"{r['type']}::{r['name']}": r for r in base}
    h = {f"{r['type']}::{r['name']}": r for r in head}
    lines: list[str] = []
    shown: dict[tuple[str, str], str] = {}  # script change (old, new) → where it was printed
    for key in sorted(h.keys() - b.keys()):
        lines.append(f"+ {key}")
    for key in sorted(b.keys() - h.keys()):
        lines.append(f"- {key}" + ("  (runs its delete script)" if key.startswith("command:remote:Command") else ""))
    for key in sorted(b.keys() & h.keys()):
        old, new = flatten(b[key]["inputs"]), flatten(h[key]["inputs"])
        opts_old = {k: v for k, v in b[key].items() if k not in ("inputs",)}
        opts_new = {k: v for k, v in h[key].items() if k not in ("inputs",)}
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        opt_changed = {k for k in opts_old.keys() | opts_new.keys() if opts_old.get(k) != opts_new.get(k)}
        if not changed and not opt_changed:
            continue
        typ = h[key]["type"]
        lines.append(f"~ {key}  [{effect(typ, changed) if changed else 'options only'}]")
        for k in sorted(changed):
            if typ == "command:remote:Command" and k in SCRIPT_KEYS:
                lines += _script_change(k, old.get(k), new.get(k), f"{h[key]['name']}.{k}", shown)
            else:
                lines.append(f"    {k}: {_short(old.get(k, '(absent)'))} → {_short(new.get(k, '(absent)'))}")
        for k in sorted(opt_changed):
            lines.append(f"    ({k}): {_short(opts_old.get(k))} → {_short(opts_new.get(k))}")
    return lines


def plan_resources(project: Path, stack: str, notes: list[str]) -> list[dict[str, Any]]:
    """Plan `stack` in `project` (a checkout), with placeholders for missing provisioner files."""
    stack_file = project / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        notes.append(f"{project.name}: no Pulumi.{stack}.yaml (stack absent at this ref)")
        return []
    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, '.');"
        "from config.load import ConfigError, from_stack_file\n"
        "try:\n    from_stack_file(Path(sys.argv[1]))\n"
        "except ConfigError as e:\n    print(json.dumps([p.message for p in e.problems]))\n"
    )
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code, stack_file.name], cwd=project, capture_output=True, text=True)
        problems = json.loads(out.stdout) if out.stdout.strip() else []
        missing = [p.split(": ", 2)[-1] for p in problems if MISSING in p]
        if not missing:
            break
        for rel in missing:
            path = project / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("placeholder for plan-diff\n")
            notes.append(f"{project.name}: placeholder for missing provisioner file {rel}")
    with tempfile.TemporaryDirectory() as out_dir:
        proc = subprocess.run(
            [sys.executable, "-m", "stacks.plan", str(stack_file), "--out", out_dir],
            cwd=project,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 and not (Path(out_dir) / "resources.json").is_file():
            raise SystemExit(f"plan of {project} failed:\n{proc.stderr or proc.stdout}")
        if proc.returncode != 0:
            notes.append(f"{project.name}: rules broken:\n{proc.stdout.split('rules:', 1)[-1]}")
        data: list[dict[str, Any]] = relative_to(json.loads((Path(out_dir) / "resources.json").read_text()), project)
        return data


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
            base = plan_resources(base_dir, args.stack, notes)
            head = plan_resources(head_dir, args.stack, notes)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_dir)], cwd=ROOT, check=False)
    lines = diff(base, head)
    print(f"## Plan diff of stack `{args.stack}`: {args.base} → working tree")
    print("Desired state against desired state (offline plans); `pulumi preview` compares with the live stack.")
    print("```diff")
    print("\n".join(lines) if lines else "  (no change)")
    print("```")
    for n in notes:
        print(f"note: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
