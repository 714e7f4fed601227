"""Node scripts: rendered from `components/scripts/*.sh` into remote commands.

A script is sent as the text of `bash -c` with its non-secret parameters as `key=value`
arguments (so the plan and the preview show exactly what a node runs) and its secrets
on stdin as `key=<base64>` lines (so they never reach a command line, a process list,
or a log). `lib.sh` is rendered in front of every script.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Mapping
from functools import cache
from pathlib import Path

SCRIPTS_DIR = Path(__file__).parent / "scripts"


@cache
def render(name: str) -> str:
    """lib.sh + the named script, as one bash program."""
    lib = (SCRIPTS_DIR / "lib.sh").read_text()
    body = (SCRIPTS_DIR / name).read_text()
    return f"{lib}\n# ---- {name} ----\n{body}"


def command_line(name: str, args: Mapping[str, str], sudo: bool) -> str:
    """The remote command: `[sudo -n] bash -c '<script>' <name> key=value ...`."""
    words = ["bash", "-c", render(name), name] + [f"{k}={v}" for k, v in args.items()]
    if sudo:
        words = ["sudo", "-n", *words]
    return " ".join(shlex.quote(w) for w in words)


def payload(items: Mapping[str, str | bytes]) -> str:
    """Stdin payload: one `key=<base64>` line per item, keys sorted (deterministic)."""
    lines = []
    for key in sorted(items):
        value = items[key]
        raw = value.encode() if isinstance(value, str) else value
        lines.append(f"{key}={base64.b64encode(raw).decode()}")
    return "\n".join(lines) + "\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
