# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Soak: train_sim in real time for many minutes while the learner is SIGKILLed and restarted again and again.

BipedalWalker stand-in at 50 Hz (real time, as a robot: the control loop never waits for learning), the
collector, and the learner (config/bipedal_walker.yaml, learning from 2,000 transitions, one torch thread).
Every --kill-every seconds the learner's process group gets SIGKILL; after --down seconds it is started
again with resume:=true. Meanwhile the collector keeps controlling with the last policy and keeps every
unacknowledged transition; the restarted learner takes them again.

At the end the stand-in is stopped (production ends), the collector re-sends until nothing is unacknowledged,
and the learner is stopped cleanly. Verdicts:
  * transitions produced (the collector's count) == transitions persisted (the replay chunks on disk, which
    must cover [0, N) exactly once)
  * memory: RSS of every process sampled every 10 s; growth beyond the replay buffer's own arrays is reported
  * the collector's missed deadlines (a control period over 1.5x nominal), and what it said while the learner
    was gone

    python bench/soak.py [--minutes 30] [--kill-every 300] [--down 20] [--json out.json] [--plot out.png]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sac_robot.testing.rig import DiagnosticsMonitor, ProcessGroup, node_cmd, other_load, private_ros_env, write_config

COLLECTOR, LEARNER = "sac_robot/collector/soak", "sac_robot/learner"


def soak_config(path: Path) -> Path:
    overrides = {
        "sac.learning_starts": 2000,
        "sac.torch_threads": 1,
        "robot.lockstep": False,  # real time: a robot's control loop, not the simulator's lockstep
        "robot.eval_episodes": 0,
    }
    return write_config("bipedal_walker", path, overrides)


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def persisted(run_dir: Path) -> dict[str, Any]:
    """What the replay store holds: chunks must tile [0, N) with no gap and no overlap."""
    from sac_robot.core.replay import ChunkStore

    chunks = list(ChunkStore(run_dir / "replay").chunks())
    end, gaps, overlaps = 0, 0, 0
    for c in chunks:
        gaps += int(c.start > end)
        overlaps += int(c.start < end)
        end = max(end, c.start + c.count)
    return {
        "chunks": len(chunks),
        "transitions": sum(c.count for c in chunks),
        "end": end,
        "gaps": gaps,
        "overlaps": overlaps,
    }


def soak(args: argparse.Namespace) -> dict[str, Any]:
    env = private_ros_env(args.domain_id)
    work = Path(tempfile.mkdtemp(prefix="sac_robot_soak_"))
    run_dir = Path(args.run_dir) if args.run_dir else work / "run"
    config = soak_config(work / "soak.yaml")
    procs = ProcessGroup(env, work, grace_s=30.0)  # SIGINT, 30 s for the learner's checkpoint, then SIGTERM

    def learner_cmd(resume: bool) -> list[str]:
        params = {
            "config": config,
            "run_dir": run_dir,
            "resume": resume,
            "total_steps": 10**9,
            "torch_threads": 1,
            "nice": args.learner_nice,
        }
        return node_cmd("learner_node", params)

    rt = {"realtime_priority": args.control_priority}  # train_hw's defaults: control first, the learner niced
    stand_in = {"lockstep": False, "rate_hz": 50.0, "config": config, "seed": 0, **rt}
    procs.start("stand_in", node_cmd("box2d_stand_in", stand_in))
    collector = {"config": config, "lockstep": False, "collector_id": "soak", "seed": 0, **rt}
    procs.start("collector", node_cmd("collector_node", collector))
    procs.start("learner", learner_cmd(False))
    monitor = DiagnosticsMonitor("bench_monitor", procs=procs)
    samples: list[dict[str, Any]] = []
    kills: list[dict[str, Any]] = []
    said_while_gone: set[str] = set()
    t0 = time.monotonic()
    try:
        monitor.spin_until(
            lambda: monitor.latest(COLLECTOR).get("steps", "0") != "0",
            120,
            "control steps",
            ("stand_in", "collector", "learner"),
        )
        end_at, next_kill, restart_at, life = t0 + 60 * args.minutes, t0 + args.kill_every, None, 0
        next_sample = time.monotonic()
        while time.monotonic() < end_at:
            monitor.spin_for(0.5)
            now = time.monotonic()
            procs.check_alive("stand_in", "collector")
            if restart_at is None and now >= next_kill and now + args.down < end_at:
                c = monitor.latest(COLLECTOR)
                procs.kill("learner")
                kills.append(
                    {
                        "t_s": round(now - t0, 1),
                        "collector_transitions": int(c.get("transitions", 0)),
                        "unacked": int(c.get("unacked", 0)),
                    }
                )
                restart_at = now + args.down
            if restart_at is not None:
                said_while_gone.add(monitor.latest(COLLECTOR).get("learner", ""))
                if now >= restart_at:
                    life += 1
                    procs.start("learner", learner_cmd(True), log=f"learner_{life}")
                    kills[-1]["unacked_at_restart"] = int(monitor.latest(COLLECTOR).get("unacked", 0))
                    restart_at, next_kill = None, now + args.kill_every
            if now >= next_sample:
                next_sample += 10.0
                c, lrn = monitor.latest(COLLECTOR), monitor.latest(LEARNER)
                samples.append(
                    {
                        "t_s": round(now - t0, 1),
                        "rss_mib": {k: round(rss_mib(p.pid), 1) for k, p in procs.procs.items() if p.poll() is None},
                        "collector_transitions": int(c.get("transitions", 0)),
                        "unacked": int(c.get("unacked", 0)),
                        "missed_deadlines": int(c.get("missed_deadlines", 0)),
                        "learner_stored": int(lrn.get("transitions_stored", 0)),
                        "updates": int(lrn.get("updates", 0)),
                        "learner_up": restart_at is None,
                    }
                )
                print(f"{samples[-1]['t_s']:7.0f} s  {samples[-1]}", flush=True)
        # Production ends; the learner (alive) takes everything the collector still holds.
        if restart_at is not None:
            procs.start("learner", learner_cmd(True), log="learner_final")
        procs.stop("stand_in")
        monitor.spin_until(
            lambda: monitor.latest(COLLECTOR).get("unacked") == "0",
            180,
            "every transition acknowledged",
            ("collector", "learner"),
        )
        monitor.spin_for(2.0)
        final_collector = monitor.latest(COLLECTOR)
        procs.stop("learner")
        procs.stop("collector")
    finally:
        monitor.close()
        procs.close()
    produced = int(final_collector["transitions"])
    stored = persisted(run_dir)
    learner_rss = [s["rss_mib"].get("learner") for s in samples if s["learner_up"] and "learner" in s["rss_mib"]]
    collector_rss = [s["rss_mib"]["collector"] for s in samples if "collector" in s["rss_mib"]]
    return {
        "minutes": args.minutes,
        "control_priority": args.control_priority,
        "learner_nice": args.learner_nice,
        "kill_every_s": args.kill_every,
        "down_s": args.down,
        "learner_kills": len(kills),
        "kills": kills,
        "produced": produced,
        "persisted": stored,
        "produced_equals_persisted": produced == stored["transitions"] == stored["end"]
        and not stored["gaps"]
        and not stored["overlaps"],
        "dropped_unacked": int(final_collector.get("dropped_unacked", 0)),
        "missed_deadlines": int(final_collector.get("missed_deadlines", 0)),
        "control_rate_hz": final_collector.get("control_rate_hz"),
        "collector_said_while_learner_gone": sorted(s for s in said_while_gone if s),
        "peak_rss_mib": {
            "learner": max((x for x in learner_rss if not math.isnan(x)), default=None),
            "collector": max(collector_rss, default=None),
        },
        "collector_rss_first_last_mib": [collector_rss[0], collector_rss[-1]] if collector_rss else None,
        "samples": samples,
        "other_load": other_load(),
        "logs": str(work),
    }


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60 for s in r["samples"]]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for proc in ("learner", "collector", "stand_in"):
        ax[0].plot(t, [s["rss_mib"].get(proc, float("nan")) for s in r["samples"]], label=proc)
    for k in r["kills"]:
        ax[0].axvline(k["t_s"] / 60, color="grey", lw=0.8, ls=":")
    ax[0].set_xlabel("minutes")
    ax[0].set_ylabel("RSS (MiB)")
    ax[0].set_title("memory (dotted: learner SIGKILLed)")
    ax[0].legend()
    ax[1].plot(t, [s["collector_transitions"] for s in r["samples"]], label="produced (collector)")
    ax[1].plot(t, [s["learner_stored"] for s in r["samples"]], label="stored (learner)")
    ax[1].plot(t, [s["unacked"] for s in r["samples"]], label="unacknowledged (held by the collector)")
    ax[1].set_xlabel("minutes")
    ax[1].set_title("transitions")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--kill-every", type=float, default=300.0, help="seconds between learner kills")
    ap.add_argument("--down", type=float, default=20.0, help="seconds the learner stays dead")
    ap.add_argument("--control-priority", type=int, default=50, help="SCHED_FIFO of collector and stand-in")
    ap.add_argument("--learner-nice", type=int, default=10)
    ap.add_argument("--run-dir", help="the learner's run directory (default: a new temporary one)")
    ap.add_argument("--domain-id", type=int)
    ap.add_argument("--json")
    ap.add_argument("--plot")
    args = ap.parse_args()
    r = soak(args)
    summary = {k: v for k, v in r.items() if k not in ("samples",)}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    if args.plot:
        plot(r, Path(args.plot))
    return 0 if r["produced_equals_persisted"] else 1


if __name__ == "__main__":
    sys.exit(main())
