"""Benchmark of a cluster bootstrap over SSH (figures printed, nothing asserted).

1. From the plan (the real program under the mock runtime; no hosts needed), for 1 server +
   1, 8 and 50 agents: the remote resources each node gets for an install (Commands and
   CopyToRemotes counted separately; goal ≤ 3 commands per node; which of them run at create)
   and the longest dependency chain of what runs at create (goal: the same for any number of
   agents), and the length of the registries rollout when registries.yaml changes (node after
   node, by design).
2. On the SSH test hosts (root, network namespaces; the stand-in K3s runs the real etcd,
   kube-apiserver, controllers and scheduler, kwok as each node's kubelet), driven by
   tests/hosts/driver.py with the plan's own commands, for 1 server + 1, 8 and 32 agents, each
   K3s start-up delayed by --delay (default 20 s: a real agent takes tens of seconds to pull its
   images and register; with none, the figures measure sshd and sudo on two cores): wall time
   of a fresh install and its ratios to 1+1 (goal ≤ 1.3) with the machine's CPU busy share and
   load average beside each; the critical path (the longest chain of dependent steps, their own
   seconds) minus the K3s start-ups on it (goal: the same for every N, ±10%); per agent, the SSH
   sessions on its host and about it elsewhere (goal ≤ 2 on its host), the bytes sent and the
   provisioner's CPU seconds (the ssh/sftp client processes, from wait4, plus the driver's
   thread; goal: constant); the re-run with nothing to do (goal: 0 sessions) and its wall time;
   the control-plane ready time and the memory of each host (RSS and PSS by component). The
   command-line capture daemon of the host tests is left out (its CPU is not the program's).
3. HA (3 servers + 1 agent): each server's control-plane ready time (the first one's, the
   joiners' — an etcd learner each, promoted), memory per host, then an in-place version change
   rolled one server at a time while every API server is probed (a quorum read every 0.2 s):
   the longest stretch with no API server answering, and each server's own downtime.

    .venv/bin/python bench/bootstrap.py [--delay 20] [--agents 1,8,50] [--host-agents 1,8,32] [--no-ha] [--no-hosts]
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components import kubeconfig as kc  # noqa: E402
from tests.hosts.conftest import VERSION, bundle, stack_config  # noqa: E402
from tests.hosts.driver import COMMAND, COPY, Action, Driver, Plan, Resource, Result, build_plan  # noqa: E402
from tests.hosts.kube import Kube, Probe, wait_for  # noqa: E402
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


COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def component(argv0: str, cmdline: str) -> str:
    name = Path(argv0).name
    if name in COMPONENTS:
        return name
    if "/usr/local/bin/k3s" in cmdline:
        return "k3s (stand-in)"
    return "other (sshd, sessions)"


def host_memory(host: Host) -> dict[str, tuple[int, int]]:
    """component → (RSS, PSS) in KiB, over every process in HOST's network namespace."""
    pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True).stdout.split()
    out: dict[str, list[int]] = {}
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        vals = {k: int(v) for k, v in re.findall(r"^(Rss|Pss):\s+(\d+) kB", rollup, re.M)}
        argv = [c.decode(errors="replace") for c in cmd if c]
        if not argv:
            continue
        key = component(argv[0], " ".join(argv))
        acc = out.setdefault(key, [0, 0])
        acc[0] += vals.get("Rss", 0)
        acc[1] += vals.get("Pss", 0)
    return {k: (v[0], v[1]) for k, v in out.items()}


def memory_line(host: Host, role: str) -> str:
    mem = host_memory(host)
    rss = sum(v[0] for v in mem.values())
    pss = sum(v[1] for v in mem.values())
    parts = ", ".join(f"{k} {v[0] / 1024:.0f}" for k, v in sorted(mem.items(), key=lambda kv: -kv[1][0]))
    return f"     {host.name} ({role}): RSS {rss / 1024:.0f} MiB, PSS {pss / 1024:.0f} MiB  [RSS MiB: {parts}]"


def ready_seconds(host: Host) -> list[float]:
    """The control-plane ready times `k3s server` logged on HOST (one per start)."""
    text = host.path("/var/log/aip/k3s.log").read_text() if host.path("/var/log/aip/k3s.log").exists() else ""
    return [float(x) for x in re.findall(r"control plane ready in ([0-9.]+)s", text)]


def kube_of(result: Result) -> Kube:
    assert result.kubeconfig and result.plan is not None
    api = result.plan.recording.outputs["apiServer"]
    return Kube(kc.rewrite(result.kubeconfig, api, "bench"))


def ha_figures(delay: float, work: Path) -> None:
    print("\n== HA on the SSH test hosts: 3 servers + 1 agent, then an in-place version change")
    upgrade = "v1.30.4+k3s2"
    old_dir, new_dir = work / "bundle-ha", work / "bundle-ha-upgrade"
    bundle(old_dir, delay)
    bundle(new_dir, delay, upgrade)
    th = TestHosts(4)
    hosts = th.up()
    try:
        servers, agents = hosts[:3], hosts[3:]

        def raw(version: str, bdir: Path) -> dict[str, Any]:
            token = "bench-token-0123456789"
            return stack_config(servers, agents, bundle_dir=bdir, version=version, token=token, registry_password="pw")

        with Driver(work / "state-ha.json") as driver:
            t0 = time.perf_counter()
            result = driver.up(raw(VERSION, old_dir))
            wall = time.perf_counter() - t0
            print(f"install: wall {wall:.1f}s; phases ended at: {milestones(result, servers[0].name)}")
            for i, h in enumerate(servers):
                role = "first server" if i == 0 else "joining server (etcd learner, promoted)"
                took = ", ".join(f"{x:.1f}s" for x in ready_seconds(h))
                print(f"     {h.name} control plane ready in {took}  ({role})")
            print("     memory after the install:")
            for h in hosts:
                print(memory_line(h, "server" if h in servers else "agent"))
            kube = kube_of(result)
            apis = [f"https://{h.address}:6443" for h in servers]
            with Probe(kube, apis) as probe:
                t0 = time.perf_counter()
                driver.up(raw(upgrade, new_dir))
                wall = time.perf_counter() - t0
                wait_for("every API server answering", lambda: probe.rounds and len(probe.rounds[-1][1]) == 3)
            print(
                f"version change {VERSION} -> {upgrade}: wall {wall:.1f}s; {len(probe.rounds)} probe rounds; "
                f"rounds with no API server answering: {probe.rounds_with_no_answer()}; longest stretch with none: "
                f"{probe.longest_gap():.2f}s"
            )
            print(
                "     each server's own API downtime (its restart): "
                + ", ".join(f"{h.name} {probe.longest_gap(a):.1f}s" for h, a in zip(servers, apis, strict=True))
            )
            for h in servers:
                print(f"     {h.name} control plane ready after its restart in {ready_seconds(h)[-1]:.1f}s")
            driver.destroy()
    finally:
        th.down()


def cpu_of_this_process() -> float:
    """CPU seconds of the provisioner: this process's threads and every child it reaped (the
    ssh/sftp clients; the test hosts' processes are not its children)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def critical_path(result: Result, plan: Plan) -> tuple[float, list[Action]]:
    """The longest chain of dependent steps that ran (their own seconds, no waiting): what no
    amount of parallelism makes shorter."""
    ran = {a.key: a for a in result.actions}

    @functools.cache
    def longest(key: str) -> tuple[float, tuple[str, ...]]:
        deps = [longest(d) for d in plan.resources[key].dependencies if d in ran]
        t, path = max(deps, default=(0.0, ()))
        return t + ran[key].seconds, (*path, key)

    t, path = max((longest(k) for k in ran), default=(0.0, ()))
    return t, [ran[k] for k in path]


def starts_on(path: list[Action]) -> list[str]:
    """The nodes whose K3s start-up (each with the stand-in's delay) the chain waits for: those
    whose install is on it."""
    return sorted({a.name.removeprefix("k3s-").removesuffix("-install") for a in path if a.name.endswith("-install")})


def own_startup(host: Host, delay: float, first: bool) -> float:
    """How long HOST's K3s took from its start to its Node Ready, as it logged it: the delay plus
    its own start-up (the machine's part, not the program's)."""
    if first:
        return ready_seconds(host)[0]  # the server's count starts before the delay
    log = host.path("/var/log/aip/k3s-agent.log")
    text = log.read_text() if log.exists() else ""
    took = [float(x) for x in re.findall(r"node \S+ Ready in ([0-9.]+)s", text)]
    return delay + (took[0] if took else 0.0)


@dataclass
class AgentCost:
    on: int  # SSH sessions on its host
    about: int  # sessions about it on another host (its ready check, on the first server)
    sent: int  # bytes sent for it
    client_cpu: float  # CPU seconds of the ssh/sftp client processes for its steps
    thread_cpu: float  # CPU seconds of the driver's threads for its steps (the engine's part here)


@dataclass
class Run:
    agents: int
    wall: float
    busy: float  # the machine's CPU busy share during the install
    load: float  # 1-minute load average at its end
    cpu: float  # provisioner CPU seconds
    critical: float
    own: float  # the nodes' own start-ups on the critical path (delay included)
    starts: int  # how many K3s start-ups are on it
    per_agent: list[AgentCost]
    rerun_commands: int
    rerun_wall: float

    @property
    def program(self) -> float:
        """The critical path without the nodes' own start-ups: SSH, sudo, the scripts, the waits."""
        return self.critical - self.own


def per_agent(result: Result, agents: list[Host]) -> list[AgentCost]:
    out = []
    for h in agents:
        on = [a for a in result.actions if a.where.endswith(f"@{h.address}:{h.port}")]
        about = [a for a in result.actions if f"-{h.name}-" in a.name and a not in on]
        mine = on + about
        out.append(
            AgentCost(
                on=sum(a.sessions for a in on),
                about=sum(a.sessions for a in about),
                sent=sum(a.sent for a in mine),
                client_cpu=sum(a.client_cpu for a in mine),
                thread_cpu=sum(a.thread_cpu for a in mine),
            )
        )
    return out


def chain_text(path: list[Action]) -> str:
    shown = [a for a in path if a.seconds >= 0.1]
    rest = [a for a in path if a.seconds < 0.1]
    tail = f" (+ {len(rest)} steps under 0.1s, {sum(a.seconds for a in rest):.1f}s)" if rest else ""
    return " → ".join(f"{a.name} {a.seconds:.1f}s" for a in shown) + tail


def host_run(n: int, delay: float, bundle_dir: Path, work: Path) -> Run:
    th = TestHosts(n + 1, capture=False)  # the capture daemon's CPU is not the program's
    hosts = th.up()
    try:
        base = {h.name: sessions(h) for h in hosts}  # testhosts' own login check at `up`
        raw = stack_config(
            hosts[:1], hosts[1:], bundle_dir=bundle_dir, token="bench-token-0123456789", registry_password="pw"
        )
        with Driver(work / f"state-{n}.json") as driver:
            t0 = time.perf_counter()
            plan = driver.plan(raw)
            planned = time.perf_counter() - t0
            busy0, total0 = cpu_busy()
            cpu0 = cpu_of_this_process()
            t0 = time.perf_counter()
            result = driver.up(raw, plan=plan)
            wall = time.perf_counter() - t0
            cpu = cpu_of_this_process() - cpu0
            busy1, total1 = cpu_busy()
            load = os.getloadavg()[0]
            runs = {h.name: tuple(x - y for x, y in zip(sessions(h), base[h.name], strict=True)) for h in hosts}
            memory = [memory_line(h, "server" if i == 0 else "agent") for i, h in enumerate(hosts)]
            again = driver.up(raw)
            driver.destroy()
        critical, path = critical_path(result, plan)
        by_name = {h.name: h for h in hosts}
        owns = {name: own_startup(by_name[name], delay, name == hosts[0].name) for name in starts_on(path)}
        run = Run(
            agents=n,
            wall=wall,
            busy=(busy1 - busy0) / (total1 - total0),
            load=load,
            cpu=cpu,
            critical=critical,
            own=sum(owns.values()),
            starts=len(owns),
            per_agent=per_agent(result, hosts[1:]),
            rerun_commands=sum(a.sessions for a in again.actions),
            rerun_wall=again.seconds,
        )
        print(
            f"1+{n}: {len(plan.resources)} remote resources (plan {planned:.1f}s); wall {wall:.1f}s; machine CPU busy "
            f"{100 * run.busy:.0f}% of {os.cpu_count()}, load {load:.1f}; provisioner CPU {cpu:.2f}s"
        )
        print(f"     phases ended at: {milestones(result, hosts[0].name)}")
        print(f"     critical path {critical:.1f}s: {chain_text(path)}")
        print(
            f"       = {run.program:.1f}s the program (SSH, sudo, scripts, waits) + the K3s start-ups on it, as the "
            f"nodes logged them: "
            + ", ".join(f"{k} {v:.1f}s ({delay:g}s delay + {v - delay:.1f}s)" for k, v in owns.items())
        )
        took = ready_seconds(hosts[0])[0]
        print(f"     {hosts[0].name} control plane ready in {took:.1f}s (k3s server start → its Node Ready)")
        first = runs[hosts[0].name]
        agents = sorted({runs[h.name] for h in hosts[1:]})
        print(
            f"     SSH sessions (commands + sftp, the hosts' sshd logs): {hosts[0].name} (first server) {first[0]} + "
            f"{first[1]}; each agent's host {', '.join(f'{c} + {s}' for c, s in agents)}"
        )
        pa = run.per_agent
        on, about = sorted({x.on for x in pa}), sorted({x.about for x in pa})
        sent = sorted(x.sent for x in pa)
        print(
            f"     per agent (driver): sessions on its host {'/'.join(map(str, on))}, about it on the first server "
            f"{'/'.join(map(str, about))}; sent {sent[0] / 1e6:.2f}–{sent[-1] / 1e6:.2f} MB; provisioner CPU: "
            f"ssh/sftp clients {min(x.client_cpu for x in pa):.3f}–{max(x.client_cpu for x in pa):.3f}s, driver "
            f"threads {min(x.thread_cpu for x in pa):.3f}–{max(x.thread_cpu for x in pa):.3f}s"
        )
        print(f"     re-run with nothing to do: {run.rerun_commands} SSH sessions, {run.rerun_wall:.1f}s")
        print("     memory after the install:")
        for line in memory if n <= 1 else [*memory[:2], f"     (and {n - 1} more agents like {hosts[1].name})"]:
            print(line)
        return run
    finally:
        th.down()


def goal(ok: bool) -> str:
    return "✓" if ok else "✗"


def host_figures(agent_counts: list[int], delay: float, work: Path) -> None:
    print(
        f"\n== on the SSH test hosts (stand-in K3s: the real control plane, kwok kubelets; start-up delay "
        f"{delay:g}s per K3s start, user aiptest, {os.cpu_count()} CPUs, no capture daemon)"
    )
    bundle_dir = work / "bundle-hosts"
    bundle(bundle_dir, delay)
    runs = [host_run(n, delay, bundle_dir, work) for n in agent_counts]
    one = runs[0]
    print(f"\n== bootstrap goals (one run; machine: {os.cpu_count()} CPUs, {_mem_gib():.0f} GiB)")
    for r in runs[1:]:
        ratio = r.wall / one.wall
        print(
            f"wall(1+{r.agents}) / wall(1+{one.agents}) = {ratio:.2f}  {goal(ratio <= 1.3)} (goal ≤ 1.3)   "
            f"[machine busy {100 * one.busy:.0f}% → {100 * r.busy:.0f}%, load {one.load:.1f} → {r.load:.1f}]"
        )

    def spread(xs: list[float]) -> float:
        return max(xs) / min(xs) - 1 if min(xs) > 0 else float("inf")

    beyond = [r.critical - r.starts * delay for r in runs]
    print(
        "critical path minus the start-up delays: "
        + ", ".join(f"1+{r.agents} {b:.1f}s" for r, b in zip(runs, beyond, strict=True))
        + f"; spread {100 * spread(beyond):.0f}%  {goal(spread(beyond) <= 0.10)} (goal ±10%)"
    )
    print(
        "     of which the program's (minus the nodes' own start-ups as they logged them): "
        + ", ".join(f"1+{r.agents} {r.program:.1f}s" for r in runs)
        + f"; spread {100 * spread([r.program for r in runs]):.0f}%"
    )
    cores = os.cpu_count() or 1
    scaled = [r.program * min(1.0, cores / r.load) if r.load > 0 else r.program for r in runs]
    print(
        f"     ... scaled by the CPU share a process got ({cores} CPUs / load, when the load is higher): "
        + ", ".join(f"1+{r.agents} {x:.1f}s" for r, x in zip(runs, scaled, strict=True))
        + f"; spread {100 * spread(scaled):.0f}% (an estimate: what is left once the machine's queue is out)"
    )
    for label, get in (
        ("ssh/sftp clients (what pulumi-command's SSH client does)", lambda x: x.client_cpu),
        ("+ the driver's threads (the test engine's own work)", lambda x: x.client_cpu + x.thread_cpu),
    ):
        cpus = [sum(get(x) for x in r.per_agent) / r.agents for r in runs]
        print(
            f"provisioner CPU per agent, {label}: "
            + ", ".join(f"1+{r.agents} {c:.3f}s" for r, c in zip(runs, cpus, strict=True))
            + f"; spread {100 * spread(cpus):.0f}%  {goal(spread(cpus) <= 0.20)} (goal: constant, ±20%)"
        )
    totals = ", ".join(f"1+{r.agents} {r.cpu:.1f}s ({r.cpu / (r.agents + 1):.2f}s/node)" for r in runs)
    print(f"     whole provisioner process during the install: {totals}")
    most = max(x.on for r in runs for x in r.per_agent)
    print(
        f"SSH sessions per agent at create, on its host: {most}  {goal(most <= 2)} (goal ≤ 2); "
        f"plus {max(x.about for r in runs for x in r.per_agent)} on the first server (its ready check)"
    )
    last = runs[-1]
    print(
        f"re-run with nothing to do at 1+{last.agents}: {last.rerun_commands} SSH sessions "
        f"{goal(last.rerun_commands == 0)} (goal 0), {last.rerun_wall:.1f}s"
    )


def _mem_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--delay", type=float, default=20.0, help="stand-in K3s start-up delay (s; a real agent takes tens of seconds)"
    )
    ap.add_argument("--agents", default="1,8,50", help="agent counts for the plan figures")
    ap.add_argument(
        "--host-agents", default="1,8,32", help="agent counts run on the test hosts (the first is the base)"
    )
    ap.add_argument("--no-ha", action="store_true", help="skip the 3-server install and rolling upgrade")
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
        if not a.no_ha:
            ha_figures(a.delay, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
