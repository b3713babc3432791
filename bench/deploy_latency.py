# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Deploy-node latency and memory: the policy node drives the PyBullet stand-in in real time.

Starts the PyBullet quadruped stand-in (real time) and the policy node with the default quadruped network
(a freshly initialised 256x256 actor, or --policy FILE), optionally (--with-learner) a whole training job
(`sac-robot launch train_sim config:=quadruped stand_in:=pybullet`, on another ROS domain) as load on the
same machine. After a warm-up it measures for --seconds and reads from the policy node's /diagnostics:

    latency   newest sensor header stamp → command published (includes waiting for the next timer tick)
    compute   timer callback start → command published (state, observation, policy, safety, publish)
    interval  between control steps (timer jitter)

and samples the node's memory (VmRSS, VmHWM in /proc/PID/status) and CPU time. Prints a table, or JSON.
Every process runs with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST on a domain of its own; the benchmark
stops everything it started. Run it alone on the machine for numbers worth quoting.

    python bench/deploy_latency.py [--seconds 20] [--with-learner] [--rate 20] [--json [FILE]]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from sac_robot.testing.rig import DiagnosticsMonitor, ProcessGroup, cli_cmd, node_cmd, private_ros_env, ros_env

ROOT = Path(__file__).resolve().parents[1]
PAGE_TICKS = os.sysconf("SC_CLK_TCK")
POLICY_NODE, LEARNER = "sac_robot/policy_node", "sac_robot/learner"  # diagnostics status names (prefix)


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM in MiB, and user+system CPU seconds, of one process."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024.0
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / PAGE_TICKS
    except (OSError, IndexError, ValueError):
        pass
    return out


def export_default_policy(path: Path, rate: float) -> Path:
    """A freshly initialised SAC actor with the quadruped config's network (what a trained one costs to run)."""
    import numpy as np

    from sac_robot.core.config import load_config
    from sac_robot.core.export import export_policy
    from sac_robot.core.sac import SAC
    from sac_robot.robot.deploy_check import pipeline_policy_info
    from sac_robot.robot.pipeline import build_pipeline

    cfg = load_config("quadruped", {"sac.device": "cpu", "robot.control_rate_hz": rate})
    pipe = build_pipeline(cfg.robot)
    ones = np.ones(pipe.act_dim)
    agent = SAC(pipe.obs_dim, pipe.act_dim, -ones, ones, cfg.sac, seed=0)
    return export_policy(
        agent, path, env_id=cfg.env.id, config=cfg.model_dump(mode="json"), **pipeline_policy_info(pipe)
    )


def run(args: argparse.Namespace, tmp: Path) -> dict:
    domain = args.domain_id
    learner_domain = domain + 1
    if 100 in (domain, learner_domain):
        raise SystemExit("--domain-id: pick a domain other than 100 (and 99)")
    policy = Path(args.policy) if args.policy else export_default_policy(tmp / "policy.safetensors", args.rate)
    rate = f"{args.rate:g}"
    # This process and every one it starts on this benchmark's domain, localhost only (the learner job on the
    # next domain); stopped with SIGINT, then SIGTERM, then SIGKILL.
    procs = ProcessGroup(private_ros_env(domain), tmp, cwd=ROOT, grace_s=10.0)
    monitors: list[DiagnosticsMonitor] = []
    result: dict = {
        "config": "quadruped",
        "control_rate_hz": args.rate,
        "seconds": args.seconds,
        "with_learner": args.with_learner,
        "control_priority": args.control_priority,
        "policy": str(policy) if args.policy else "fresh SAC actor, quadruped sac.hidden_sizes",
        "cpus": os.cpu_count(),
    }
    try:
        if args.with_learner:
            job = ["launch", "train_sim", "config:=quadruped", "stand_in:=pybullet", f"run_dir:={tmp / 'learner_run'}"]
            # the launcher starts its nodes in sessions of their own; 70 s for the learner's final checkpoint
            procs.start("learner_job", cli_cmd(*job), env=ros_env(learner_domain), grace_s=70.0, launcher=True)
            learner = DiagnosticsMonitor(f"deploy_bench_{learner_domain}", domain_id=learner_domain)
            monitors.append(learner)
            end = time.monotonic() + args.learner_warmup
            while time.monotonic() < end:
                learner.spin_once(0.1)
        rt = {"realtime_priority": args.control_priority}
        stand_in = {"config": "quadruped", "lockstep": False, "control_rate_hz": rate, **rt}
        procs.start("stand_in", node_cmd("pybullet_stand_in", stand_in))
        policy_node = {
            "policy": policy,
            "config": "quadruped",
            "control_rate_hz": rate,
            "latency_window_s": args.seconds,
            **rt,
        }
        procs.start("policy_node", node_cmd("policy_node", policy_node))
        deploy = DiagnosticsMonitor(f"deploy_bench_{domain}", domain_id=domain)
        monitors.append(deploy)

        def spin_all(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for m in monitors:
                    m.spin_once(0.05)
                procs.check_alive()

        deadline = time.monotonic() + 90.0
        while not int(deploy.latest(deploy.status_name(POLICY_NODE) or POLICY_NODE).get("steps", "0")) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the policy node sent no command within 90 s")
            spin_all(0.5)
        status = deploy.status_name(POLICY_NODE) or POLICY_NODE
        spin_all(args.warmup)
        pid = procs.procs["policy_node"].pid
        start, samples = proc_status(pid), []
        steps0, steps0_at = int(deploy.latest(status)["steps"]), deploy.received_at(status)
        learner0 = learner.latest(LEARNER) if args.with_learner else None
        t0 = time.monotonic()
        load0 = os.getloadavg()[0]
        while time.monotonic() - t0 < args.seconds:
            spin_all(1.0)
            samples.append(proc_status(pid))
        # The node's windows cover the last `seconds`; wait for a report from after the measurement ended.
        t_end = time.monotonic()
        while deploy.received_at(status) < t_end:
            spin_all(0.2)
        elapsed = time.monotonic() - t0
        d = deploy.latest(status)
        end_status = proc_status(pid)
        result.update(
            {
                "steps": int(d["steps"]) - steps0,
                "steps_per_s": (int(d["steps"]) - steps0) / (deploy.received_at(status) - steps0_at),
                "late_steps": int(d["late_steps"]),
                "interventions": int(d["interventions"]),
                "in_safe_mode": d["in_safe_mode"],
                "load_avg_1min": round((load0 + os.getloadavg()[0]) / 2, 2),
                "rss_mib": round(max(s.get("VmRSS", 0.0) for s in samples), 1),
                "hwm_mib": round(end_status.get("VmHWM", float("nan")), 1),
                "cpu_percent": round(100.0 * (end_status["cpu_s"] - start["cpu_s"]) / elapsed, 1),
            }
        )
        for name in ("latency", "compute", "step_interval"):
            result[name + "_ms"] = {q: float(d[f"{name}_ms_{q}"]) for q in ("p50", "p99", "max")}
        if args.with_learner and learner.latest(LEARNER):
            lr = learner.latest(LEARNER)
            result["learner"] = {
                "updates_per_s": float(lr.get("updates_per_s", "nan")),
                "updates": int(lr.get("updates", 0)),
                "updates_at_start": int(learner0.get("updates", 0)) if learner0 else None,
                "transitions_stored": int(lr.get("transitions_stored", 0)),
            }
    finally:
        procs.close()  # newest first: the policy node, the stand-in, then the learner job
        for m in monitors:
            m.close()
    return result


def table(r: dict) -> str:
    learner = "off"
    if r["with_learner"]:
        lr = r.get("learner") or {}
        learner = f"on ({lr.get('updates_per_s', float('nan')):.0f} updates/s, {lr.get('updates', 0)} updates)"
    lines = [
        (
            f"deploy latency: quadruped at {r['control_rate_hz']:g} Hz, {r['seconds']:g} s measured, "
            f"learner {learner}, load average {r['load_avg_1min']} on {r['cpus']} CPUs"
        ),
        f"{'':30s}{'p50':>9s}{'p99':>9s}{'max':>9s}   ms",
    ]
    for name, what in (
        ("latency", "sensor stamp → command"),
        ("compute", "control step compute"),
        ("step_interval", "control step interval"),
    ):
        v = r[name + "_ms"]
        lines.append(f"{what:30s}{v['p50']:9.2f}{v['p99']:9.2f}{v['max']:9.2f}")
    lines.append(
        f"policy node: RSS {r['rss_mib']:.1f} MiB (peak {r['hwm_mib']:.1f} MiB), CPU {r['cpu_percent']:.1f} % of a core, "
        f"{r['steps']} steps ({r['steps_per_s']:.1f}/s), {r['late_steps']} late, {r['interventions']} interventions"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement window (default 20)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of control before measuring (default 5)")
    ap.add_argument("--with-learner", action="store_true", help="also run train_sim (quadruped, pybullet) as load")
    ap.add_argument("--learner-warmup", type=float, default=30.0, help="seconds the learner job runs first")
    ap.add_argument("--rate", type=float, default=20.0, help="control rate, Hz; a divisor of 500 (default 20)")
    ap.add_argument("--policy", help="a policy file to deploy instead of a fresh quadruped actor")
    ap.add_argument(
        "--control-priority",
        type=int,
        default=0,
        help="SCHED_FIFO priority of the policy node and the stand-in (the robot's driver), as deploy's "
        "control_priority launch argument (default 0: normal scheduling)",
    )
    ap.add_argument("--domain-id", type=int, default=150 + os.getpid() % 40, help="ROS domain (learner: +1)")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE", help="JSON instead of a table (to FILE)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="deploy_latency_") as tmp:
        result = run(args, Path(tmp))
    if args.json == "-":
        print(json.dumps(result, indent=2))
    else:
        print(table(result))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
