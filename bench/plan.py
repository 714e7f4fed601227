"""Benchmark of the offline plan (`make bench`): wall time and peak memory per stack,
next to an empty program under the same mock runtime (the floor), and the growth from
50 to 200 agents (goal t(200)/t(50) ≤ 4.5: cost linear in nodes).

Each case runs in its own process (peak RSS from wait4), best of 3 wall times.
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

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchHostKeyForGeneratedStacks0000000000000"


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
    from tests.conftest import stand_in_airgap

    start = time.perf_counter()
    if case == "empty":
        with tempfile.TemporaryDirectory() as d:
            prog = Path(d) / "empty.py"
            prog.write_text("import pulumi\n")
            rec = mockrun.run({}, "bench", Path(d), program=prog)
    elif case in ("dev", "prod"):
        with tempfile.TemporaryDirectory() as d:
            stack = Path(d) / f"Pulumi.{case}.yaml"
            stack.write_text((ROOT / f"Pulumi.{case}.yaml").read_text())
            stand_in_airgap(Path(d))
            raw, enc = read_stack_file(stack)
            rec = mockrun.run(raw, case, Path(d), sorted({p.split(".")[0] for p in enc}))
    else:
        rec = mockrun.run(generated(int(case.split("+")[1])), "bench", ROOT)
    return {"seconds": time.perf_counter() - start, "resources": len(rec.declared)}


def measure(case: str, repeat: int) -> dict[str, Any]:
    best: dict[str, Any] = {}
    for _ in range(repeat):
        with tempfile.TemporaryFile("w+") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, __file__, "--one", case], cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True
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
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return 0
    cases = ["empty", "dev", "prod", "3+50", "3+200"]
    results = {c: measure(c, args.repeat) for c in cases}
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
    ratio = results["3+200"]["seconds"] / results["3+50"]["seconds"]
    print(f"t(3+200)/t(3+50) = {ratio:.2f}  (goal <= 4.5; nodes x4)")
    for c in cases:
        for line in results[c]["messages"]:
            print(f"  ({c}) {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
