"""Benchmark of the offline plan (`make bench`): per stack, the program's time (evaluating
__main__.py under the mock runtime), the process's (interpreter start to exit, imports
included) and its peak RSS, next to an empty program under the same runtime (the floor);
3 servers + 50, 200 and 1,000 agents for the growth; a cProfile of the largest case.

Goals (printed beside each figure): t(3+1000)/t(3+50) <= 20 (linear in nodes), peak RSS <= 1 GiB
at 1,000 agents, the prod plan's process <= 2x the floor's.

Each case runs in its own process (peak RSS from wait4), best of --repeat wall times (the
1,000-agent case once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGV4YW1wbGUtVGVzdEhvc3RLZS1SRVBMQUNFLVdJVEgt"  # well-formed, fake


def generated(agents: int) -> dict[str, Any]:
    from config.load import read_stack_file

    raw, _ = read_stack_file(ROOT / "Pulumi.dev.yaml")
    raw["cluster"] = {
        "ssh": {"user": "ops", "privateKey": "bench-key"},
        "k3s": {"version": "v1.30.4+k3s1"},
        "servers": [{"name": f"s{i}", "host": f"10.1.0.{i + 1}", "hostKey": HOST_KEY} for i in range(3)],
        "agents": [
            {"name": f"a{i}", "host": f"10.2.{i // 250}.{i % 250 + 1}", "hostKey": HOST_KEY} for i in range(agents)
        ],
    }
    raw.pop("octopus", None)
    raw["openhydra"] = {"enabled": False}
    return raw


def one(case: str) -> dict[str, Any]:
    from config.load import read_stack_file
    from stacks import mockrun

    start = time.perf_counter()
    if case in ("empty", "empty+sdk"):
        # empty+sdk: the floor plus the provider SDK modules a stack imports (AIP_BENCH_SDK_MODULES)
        modules = [m for m in os.environ.get("AIP_BENCH_SDK_MODULES", "").split(",") if m] if "+" in case else []
        with tempfile.TemporaryDirectory() as d:
            prog = Path(d) / "empty.py"
            prog.write_text(
                "import importlib\nimport pulumi\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
            )
            rec = mockrun.run({}, "bench", Path(d), program=prog)
    elif case in ("dev", "prod"):
        with tempfile.TemporaryDirectory() as d:
            stack = Path(d) / f"Pulumi.{case}.yaml"
            stack.write_text((ROOT / f"Pulumi.{case}.yaml").read_text())
            raw, enc = read_stack_file(stack)
            # as `make plan` runs it: a review (the provisioner's files are not here)
            rec = mockrun.run(raw, case, Path(d), sorted({p.split(".")[0] for p in enc}), review=True)
    else:
        rec = mockrun.run(generated(int(case.split("+")[1])), "bench", ROOT)
    sdk = sorted(m for m in sys.modules if m.split(".")[0] in SDKS)
    return {"seconds": time.perf_counter() - start, "resources": len(rec.declared), "sdk_modules": sdk}


SDKS = ("pulumi_kubernetes", "pulumi_command", "pulumi_random")


def profile(case: str, top: int = 10) -> str:
    """Where the program's time goes for CASE: cProfile, top functions by own time."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.runcall(one, case)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    return "\n".join(lines[start : start + top + 1])


def measure(case: str, repeat: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    best: dict[str, Any] = {}
    for _ in range(repeat):
        with tempfile.TemporaryFile("w+") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, __file__, "--one", case],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, **(env or {})},
            )
            out = proc.stdout.read() if proc.stdout else ""
            _, status, usage = os.wait4(proc.pid, 0)
            err.seek(0)
            messages = err.read()
        if status != 0:
            raise SystemExit(f"case {case} failed:\n{messages}")
        data = json.loads(out.strip().splitlines()[-1])
        data["messages"] = sorted(set(messages.splitlines()))
        data["peak_mib"] = usage.ru_maxrss / 1024
        data["process_s"] = time.perf_counter() - t0
        if not best or data["seconds"] < best["seconds"]:
            best = data
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return 0
    if args.profile:
        print(profile(args.profile))
        return 0
    cases = ["empty", "dev", "prod", "3+50", "3+200", "3+1000"]
    results = {c: measure(c, 1 if c == "3+1000" else args.repeat) for c in cases}
    floor = results["empty"]
    print("program = evaluating __main__.py under mocks; process = python start to exit (imports included)")
    print(
        f"{'case':<8} {'resources':>9} {'program s':>10} {'process s':>10} {'x floor':>8}"
        f" {'peak MiB':>9} {'x floor':>8}"
    )
    for c in cases:
        r = results[c]
        print(
            f"{c:<8} {r['resources']:>9} {r['seconds']:>10.3f} {r['process_s']:>10.2f}"
            f" {r['process_s'] / floor['process_s']:>8.2f} {r['peak_mib']:>9.0f}"
            f" {r['peak_mib'] / floor['peak_mib']:>8.2f}"
        )

    def verdict(ok: bool) -> str:
        return "meets the goal" if ok else "MISSES the goal"

    t = {c: results[c]["seconds"] for c in cases}
    r200, r1000 = t["3+200"] / t["3+50"], t["3+1000"] / t["3+50"]
    rss = results["3+1000"]["peak_mib"]
    prod_x = results["prod"]["process_s"] / floor["process_s"]
    print(f"t(3+200)/t(3+50)  = {r200:6.2f}  (nodes x4)")
    print(f"t(3+1000)/t(3+50) = {r1000:6.2f}  goal <= 20: {verdict(r1000 <= 20)}")
    print(f"peak RSS 3+1000   = {rss:6.0f} MiB  goal <= 1024: {verdict(rss <= 1024)}")
    print(f"prod process      = {prod_x:6.2f} x floor  goal <= 2: {verdict(prod_x <= 2)}")
    mods = results["prod"]["sdk_modules"]
    sdk = measure("empty+sdk", args.repeat, {"AIP_BENCH_SDK_MODULES": ",".join(mods)})
    prod = results["prod"]
    per_resource = 1000 * (prod["seconds"] - sdk["seconds"]) / max(1, prod["resources"])
    print(
        f"  why: the floor is python + the Pulumi SDK; importing the {len(mods)} provider SDK modules prod uses\n"
        f"  (pulumi_kubernetes.core.v1 alone defines every core/v1 type) takes it to {sdk['process_s']:.2f}s\n"
        f"  ({sdk['process_s'] / floor['process_s']:.2f} x floor) before one resource is declared; prod is "
        f"{prod['process_s'] / sdk['process_s']:.2f} x that\n"
        f"  (the program and the SDK's registration: {per_resource:.1f} ms per resource; see the profile)"
    )
    for c in cases:
        for line in results[c]["messages"]:
            print(f"  ({c}) {line}")
    proc = subprocess.run(
        [sys.executable, __file__, "--profile", "3+200"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    print("\nprofile of 3+200, top 10 by own time:")
    print(proc.stdout.rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
