"""`python -m stacks check Pulumi.<stack>.yaml` — validate a stack file offline.

`python -m stacks schema` regenerates docs/config.schema.json and docs/config.md.
Exit 0 when valid, 1 with every problem listed (key path and what is expected): the
config model's rules, then every chart's values against its values.schema.json.

Without --strict it is a review (a pull request, a bare clone): provisioner files that are
not here are listed as notes, plain-text secrets as warnings. With --strict (on the
provisioner, before `pulumi up`; CI for stacks without provisioner files) both are errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config.load import ConfigError, from_stack_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks")
    sub = parser.add_subparsers(dest="cmd", required=True)
    check = sub.add_parser("check", help="validate stack files offline")
    check.add_argument("files", nargs="+", type=Path)
    check.add_argument(
        "--strict",
        action="store_true",
        help="what `pulumi up` needs: every provisioner file present, no secret in plain text, warnings as errors",
    )
    schema = sub.add_parser("schema", help="write docs/config.schema.json and docs/config.md")
    schema.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)

    if args.cmd == "schema":
        from stacks.docs import write_docs

        for path in write_docs(args.out):
            print(f"wrote {path}")
        return 0

    status = 0
    for path in args.files:
        if not path.is_file():
            print(f"{path}: no such file", file=sys.stderr)
            status = 1
            continue
        try:
            loaded = from_stack_file(path, strict=args.strict)
            from stacks.platform import validate_chart_values  # (imports the components)

            notes = validate_chart_values(loaded.config, path.resolve().parent)
        except ConfigError as err:
            print(err.render(), file=sys.stderr)
            status = 1
            continue
        cfg = loaded.config
        n = len(cfg.cluster.servers) + len(cfg.cluster.agents)
        for note in notes:
            print(f"{path}: note: {note}")
        for warning in loaded.warnings:
            print(f"{path}: warning: {warning}", file=sys.stderr)
        absent = [f for f in loaded.files if not f.present]
        for f in absent:
            print(f"{path}: note: {f.describe()}")
        print(
            f"{path}: ok ({n} nodes, {len(loaded.encrypted_paths)} encrypted values accepted as present, "
            f"{len(absent)} provisioner files absent here, chart values valid"
            f"{', strict' if args.strict else ''})"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
