"""Benchmark of a cluster bootstrap over SSH (figures printed, nothing asserted).

1. From the plan (the real program under the mock runtime; no hosts needed), for 1 server +
   1, 8 and 50 agents: the remote resources each node gets for an install (Commands and
   CopyToRemotes counted separately; goal ≤ 3 commands per node; which of them run at create)
   and the longest dependency chain of what runs at create (goal: the same for any number of
   agents), and the length of the registries rollout when registries.yaml changes (node after
   node, by design).
2. On the SSH test hosts (root, network namespaces; stand-in K3s with a 3 s start-up delay),
   driven by tests/hosts/driver.py with the plan's own commands: wall time of a fresh install
   of 1+1 and 1+8 nodes, their ratio (goal ≤ 1.3), the re-run with nothing to do, and the SSH
   sessions each node's sshd started (from its log).

    .venv/bin/python bench/bootstrap.py [--delay 3] [--agents 1,8,50] [--host-agents 1,8] [--no-hosts]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hosts.conftest import bundle, stack_config  # noqa: E402
from tests.hosts.driver import COMMAND, COPY, Driver, Plan, Resource, build_plan  # noqa: E402
from tests.hosts.testhosts import Host, TestHosts, sshd_log, unsupported_reason  # noqa: E402

FAKE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchHostKeyForGeneratedStacks0000000000000"


def fake_hosts(n: int, key_file: Path) -> list[Host]:
    """Host records for the plan only (nothing connects to them)."""
    return [
        Host(
            name=f"n{i}",
            address=f"10.9.{i // 250}.{i % 250 + 1}",
            port=22,
            netns="",
            host_key=FAKE_KEY,
            users={},
            client_key_path=str(key_file),
            password_path="",
            known_hosts_path="",
            state_dir="",
        )
        for i in range(n)
    ]


def runs_on_create(res: Resource) -> bool:
    """A copy always runs; a command only if it has a `create` (pulumi-command runs nothing,
    not even an SSH connection, for a Command created without one)."""
    return res.type == COPY or bool(res.inputs.get("create"))


def longest_chain(plan: Plan, member: Any, counts: Any) -> tuple[int, int]:
    """Longest dependency path among the resources `member` selects: (commands, copies) on it
    that `counts` counts."""
    members = {k: r for k, r in plan.resources.items() if member(r)}

    @functools.cache
    def best(key: str) -> tuple[int, int]:
        res = members[key]
        here = (0, 0) if not counts(res) else (1, 0) if res.type == COMMAND else (0, 1)
        deps = [best(d) for d in res.dependencies if d in members]
        tail = max(deps, default=(0, 0))
        return (tail[0] + here[0], tail[1] + here[1])

    return max((best(k) for k in members), default=(0, 0))


def per_node(plan: Plan, nodes: list[str], addresses: dict[str, str]) -> dict[str, dict[str, int]]:
    """For each node: commands (run at create / declared) and copies on its host, and the
    commands about it (named after it)."""
    out = {n: Counter() for n in nodes}
    by_addr = {a: n for n, a in addresses.items()}
    for res in plan.resources.values():
        host = by_addr[res.inputs["connection"]["host"]]
        if res.type == COPY:
            out[host]["copies on it"] += 1
            continue
        out[host]["commands on it"] += 1
        out[host]["run on it"] += runs_on_create(res)
        about = res.name.split("-")[1] if res.name.count("-") >= 2 else None
        if about in out:
            out[about]["commands for it"] += 1
            out[about]["run for it"] += runs_on_create(res)
    return {n: dict(c) for n, c in out.items()}


def plan_figures(agent_counts: list[int], work: Path) -> None:
    print("== from the plan (1 server + N agents, airgap, user aiptest, no platform layer)")
    key = work / "fake_key"
    key.write_text("bench-private-key\n")
    bundle_dir = work / "bundle-plan"
    bundle(bundle_dir, 0)
    print(
        f"{'agents':>6} {'remote':>6} {'cmds (run at create)':>20} {'copies':>6}  {'bootstrap chain':>24}"
        f"  {'registries change':>17}"
    )
    for n in agent_counts:
        hosts = fake_hosts(n + 1, key)
        raw = stack_config(hosts[:1], hosts[1:], bundle_dir=bundle_dir, token="bench-token", registry_password="pw")
        t0 = time.perf_counter()
        plan = build_plan(raw)
        took = time.perf_counter() - t0
        types = Counter(r.type for r in plan.resources.values())
        run = sum(1 for r in plan.resources.values() if r.type == COMMAND and runs_on_create(r))
        boot = longest_chain(plan, lambda r: True, runs_on_create)
        regs = longest_chain(plan, lambda r: r.name.endswith("-registries"), lambda r: True)
        print(
            f"{n:>6} {len(plan.resources):>6} {types[COMMAND]:>8} ({run:>4})      {types[COPY]:>6}  "
            f"{boot[0]:>3} commands + {boot[1]} copies  {regs[0]:>8} commands   (plan {took:.2f}s)"
        )
        if n == agent_counts[0]:
            counts = per_node(plan, [h.name for h in hosts], {h.name: h.address for h in hosts})
            for name, c in counts.items():
                role = "first server" if name == hosts[0].name else "agent"
                print(
                    f"       {name} ({role}): {c.get('commands for it', 0)} commands for it (install, ready, "
                    f"registries), {c.get('run for it', 0)} run at create; on its host: "
                    f"{c.get('commands on it', 0)} commands ({c.get('run on it', 0)} run at create), "
                    f"{c.get('copies on it', 0)} copies"
                )
    print("       bootstrap chain: the longest path of what runs at create: the first server's uploads →")
    print("         its install → agents' install (in parallel, never waiting for each other) → ready;")
    print("       registries change: the rollout when registries.yaml changes, one node after the other")
    print("         (by design); at create it runs nothing unless platform layers add registry entries.")


def sessions(host: Host) -> tuple[int, int]:
    log = sshd_log(host)
    return log.count("Starting session: command"), log.count("Starting session: subsystem 'sftp'")


def cpu_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = 100.0
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / tick, sum(fields) / tick


def milestones(result: Any, first: str) -> str:
    """When each phase of the install path ended, from the first SSH step (seconds)."""
    start = min(a.started for a in result.actions)

    def end(pred: Any) -> float:
        return max((a.started + a.seconds - start for a in result.actions if pred(a.name)), default=0.0)

    steps = [
        ("uploads", end(lambda n: "-upload-" in n)),
        ("first server", end(lambda n: n == f"k3s-{first}-install")),
        ("agents installed", end(lambda n: n.endswith("-install"))),
        ("all Ready", end(lambda n: n.endswith("-ready"))),
        ("registries rolled", end(lambda n: n.endswith("-registries"))),
    ]
    return ", ".join(f"{name} {t:.1f}s" for name, t in steps)


def host_figures(agent_counts: list[int], delay: float, work: Path) -> None:
    print(f"\n== on the SSH test hosts (stand-in K3s, start-up delay {delay:g}s, user aiptest, {os.cpu_count()} CPUs)")
    bundle_dir = work / "bundle-hosts"
    bundle(bundle_dir, delay)
    walls: dict[int, float] = {}
    for n in agent_counts:
        th = TestHosts(n + 1)
        hosts = th.up()
        try:
            base = {h.name: sessions(h) for h in hosts}  # testhosts' own login check at `up`
            raw = stack_config(
                hosts[:1], hosts[1:], bundle_dir=bundle_dir, token="bench-token-0123456789", registry_password="pw"
            )
            with Driver(work / f"state-{n}.json") as driver:
                busy0, total0 = cpu_busy()
                t0 = time.perf_counter()
                plan = driver.plan(raw)
                planned = time.perf_counter() - t0
                result = driver.up(raw)
                wall = time.perf_counter() - t0
                busy1, total1 = cpu_busy()
                runs = {h.name: tuple(x - y for x, y in zip(sessions(h), base[h.name], strict=True)) for h in hosts}
                again = driver.up(raw)
                driver.destroy()
            walls[n] = wall
            print(
                f"1+{n}: {len(plan.resources)} remote resources; wall {wall:.1f}s (plan {planned:.1f}s); "
                f"machine CPU busy {100 * (busy1 - busy0) / (total1 - total0):.0f}%; "
                f"re-run with nothing to do {again.seconds:.1f}s ({len(again.actions)} commands)"
            )
            print(f"     phases ended at: {milestones(result, hosts[0].name)}")
            agents = sorted({runs[h.name] for h in hosts[1:]})
            first = runs[hosts[0].name]
            print(
                f"     SSH sessions (commands + sftp) during the install: {hosts[0].name} (first server) "
                f"{first[0]} + {first[1]}; each agent {', '.join(f'{c} + {s}' for c, s in agents)}"
            )
        finally:
            th.down()
    if len(walls) >= 2:
        lo, hi = min(walls), max(walls)
        print(f"\nratio wall(1+{hi}) / wall(1+{lo}) = {walls[hi] / walls[lo]:.2f}  (goal ≤ 1.3)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay", type=float, default=3.0, help="stand-in K3s start-up delay (s)")
    ap.add_argument("--agents", default="1,8,50", help="agent counts for the plan figures")
    ap.add_argument("--host-agents", default="1,8", help="agent counts run on the test hosts")
    ap.add_argument("--no-hosts", action="store_true", help="plan figures only")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aip-bench-") as d:
        work = Path(d)
        plan_figures([int(x) for x in a.agents.split(",")], work)
        if a.no_hosts:
            return 0
        reason = unsupported_reason()
        if reason:
            print(f"\n(test hosts skipped: {reason})")
            return 0
        host_figures([int(x) for x in a.host_agents.split(",")], a.delay, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
