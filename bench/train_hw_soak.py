# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Soak test of training on emulated hardware: `sac-robot launch train_hw stand_in:=pybullet` for minutes.

The job runs exactly as the launcher starts it (PyBullet stand-in emulating hardware: real time, sensor
noise and latency, no teleporting reset; learner; collector), from config/quadruped_hw.yaml copied to a
temporary file (only sac.learning_starts and sac.batch_size may be lowered, so a short run trains), and
the collector is armed with `sac-robot arm`. This script plays the operator: when the reset routine gives
up and asks for a person, it rights the robot (sim/teleport_reset) and calls resume (--no-person: never).

It samples every joint_states message of the stand-in for limit violations (position, velocity, effort
beyond the description's limits by more than 5 standard deviations of the emulated sensor noise), and
records the collector's diagnostics (steps, resets and their reasons, resets done, waits for a person,
safety interventions) and the learner's (updates). Verdicts:

* limit violations: must be 0
* falls: every fall (termination) is followed by a successful reset or a wait for a person
* learning continued: after learning starts, updates rise in every segment of the run

    python bench/train_hw_soak.py [--minutes 10] [--learning-starts N] [--batch-size N] [--json out.json]

Updates begin after max(learning_starts, batch_size) transitions: with the emulated robot falling often and
each routine reset taking seconds, a 1-minute run collects ~150, so it needs both lowered (e.g. 64).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sac_robot.testing.rig import DiagnosticsMonitor, ProcessGroup, cli_cmd, other_load, private_ros_env, write_config

COLLECTOR_PREFIX = "sac_robot/collector/"
SEGMENT_S = 60.0  # "updates rising throughout": checked per segment this long (short runs: 6, of at least 15 s)


class LimitWatch:
    """Every joint_states message of the robot against the description's limits, with a noise tolerance."""

    def __init__(self, description: Any, noise_std: dict[str, float]) -> None:
        self.names = description.joint_names
        self.lower, self.upper = description.array("lower"), description.array("upper")
        self.velocity, self.effort = description.array("velocity"), description.array("effort")
        self.tol = {k: 5.0 * noise_std[f"joint_{k}"] for k in ("position", "velocity", "effort")}
        self.samples = 0
        self.violations: list[dict[str, Any]] = []
        self.worst = {"position": 0.0, "velocity": 0.0, "effort": 0.0}  # largest excess over the limit

    def __call__(self, msg: Any) -> None:
        if list(msg.name) != self.names:
            return
        self.samples += 1
        q, qd, tau = (np.asarray(getattr(msg, f), dtype=float) for f in ("position", "velocity", "effort"))
        excess = {
            "position": np.maximum(self.lower - q, q - self.upper),
            "velocity": np.abs(qd) - self.velocity,
            "effort": np.abs(tau) - self.effort if len(tau) else np.zeros(len(q)),
        }
        for kind, over in excess.items():
            self.worst[kind] = max(self.worst[kind], float(over.max()))
            for j in np.flatnonzero(over > self.tol[kind]):
                if len(self.violations) < 100:
                    self.violations.append({"kind": kind, "joint": self.names[j], "excess": round(float(over[j]), 3)})
                else:
                    self.violations.append({"kind": kind})


def soak(args: argparse.Namespace) -> dict[str, Any]:
    from sac_robot.nodes.pybullet_stand_in import EMULATED_STD
    from sac_robot.robot.description import load_robot

    env = private_ros_env(args.domain_id)
    watch = LimitWatch(load_robot("quadruped"), EMULATED_STD)
    with tempfile.TemporaryDirectory(prefix="train_hw_soak_") as tmp:
        tmp_path = Path(tmp)
        lowered = {"sac.learning_starts": args.learning_starts, "sac.batch_size": args.batch_size}
        config = write_config(
            "quadruped_hw", tmp_path / "quadruped_hw.yaml", {k: v for k, v in lowered.items() if v is not None}
        )
        # The launcher stops the collector, the stand-in, then the learner (its checkpoint): 60 s before SIGTERM.
        procs = ProcessGroup(env, tmp_path, grace_s=60.0)
        monitor = DiagnosticsMonitor("bench_monitor", procs=procs, watch=("launch",))
        monitor.watch_joint_states(watch)
        launch = cli_cmd(
            "launch", "train_hw", "stand_in:=pybullet", f"config:={config}", f"run_dir:={tmp_path / 'run'}"
        )
        timeline: list[dict[str, Any]] = []
        try:
            procs.start("launch", launch, launcher=True)
            monitor.spin_until(lambda: watch.samples > 5, 180.0, "the stand-in's joint states")
            procs.arm()  # the collector reports once configured
            monitor.spin_until(lambda: _collector(monitor) is not None, 30.0, "collector diagnostics")
            name = _collector(monitor)
            t0 = time.monotonic()
            end = t0 + args.minutes * 60.0
            while time.monotonic() < end:
                monitor.spin_for(1.0)
                if args.person:
                    monitor.rescue_if_waiting(name)
                c, lrn = monitor.latest(name), monitor.latest("sac_robot/learner")
                if c:
                    timeline.append(
                        {
                            "t": round(time.monotonic() - t0, 1),
                            "steps": int(c["steps"]),
                            "phase": c["reset_phase"],
                            "updates": int(lrn.get("updates", 0)),
                            "stored": int(lrn.get("transitions_stored", 0)),
                        }
                    )
            final, learner = dict(monitor.latest(name)), dict(monitor.latest("sac_robot/learner"))
            heavy, load = other_load(), os.getloadavg()
        finally:
            monitor.close()
            procs.close()
    return _report(args, watch, timeline, final, learner, monitor.rescues, heavy, load)


def _collector(monitor: DiagnosticsMonitor) -> str | None:
    return monitor.status_name(COLLECTOR_PREFIX)


def _report(
    args: argparse.Namespace,
    watch: LimitWatch,
    timeline: list[dict[str, Any]],
    final: dict[str, str],
    learner: dict[str, str],
    rescues: int,
    heavy: list[str],
    load: tuple[float, ...],
) -> dict[str, Any]:
    reasons = json.loads(final["reset_reasons"])
    started = sum(reasons.values())
    done, waits = int(final["resets_done"]), int(final["waits_for_person"])
    in_progress = int(final["reset_phase"] not in ("IDLE", "DONE"))
    falls = reasons.get("terminated", 0)
    # Every reset ends in DONE or in a wait for a person (then the person's resume starts another attempt,
    # counted in the same reset); at most the one running at the end is still open.
    resolved = done + waits >= started - in_progress
    updates = [(p["t"], p["updates"]) for p in timeline]
    learning = _learning_continued(updates, args.minutes * 60.0)
    result = {
        "minutes": args.minutes,
        "joint_state_samples": watch.samples,
        "limit_violations": len(watch.violations),
        "violations_first": watch.violations[:10],
        "worst_excess_over_limits": {k: round(v, 3) for k, v in watch.worst.items()},
        "tolerance": {k: round(v, 3) for k, v in watch.tol.items()},
        "collector_steps": int(final["steps"]),
        "resets_started": started,
        "reset_reasons": reasons,
        "resets_done": done,
        "falls": falls,
        "waits_for_person": waits,
        "person_rescues": rescues,
        "reset_in_progress_at_end": bool(in_progress),
        "falls_resolved": resolved,
        "safety_interventions": int(final["interventions"]),
        "safety_counts": {k[6:]: int(v) for k, v in final.items() if k.startswith("count.")},
        "reset_time_s": float(final["reset_time_s"]),
        "missed_deadlines": int(final.get("missed_deadlines", 0)),
        "learner_updates": int(learner.get("updates", 0)),
        "learner_transitions_stored": int(learner.get("transitions_stored", 0)),
        "policy_version": int(final["policy_version"]),
        "learning": learning,
        "loadavg_end": [round(x, 2) for x in load],
        "busiest_processes_at_end": heavy,
    }
    result["passed"] = result["limit_violations"] == 0 and resolved and learning["continued"]
    return result


def _learning_continued(updates: list[tuple[float, int]], span_s: float) -> dict[str, Any]:
    """After the first update, did the update count rise in every segment of the run?"""
    started, first = next(((t, u) for t, u in updates if u > 0), (None, 0))
    if started is None:
        return {"continued": False, "why": "the learner never updated (raise --minutes or lower --learning-starts)"}
    segment = min(SEGMENT_S, max(15.0, (span_s - started) / 6))  # a reset can pause the data for seconds
    rising, edges, t = [], [], started
    while t + segment <= updates[-1][0] + 1e-6:
        inside = [u for s, u in updates if t <= s <= t + segment]
        rising.append(len(inside) >= 2 and inside[-1] > inside[0])
        edges.append(round(t, 1))
        t += segment
    return {
        "continued": bool(rising) and all(rising),
        "first_update_at_s": started,
        "segment_s": round(segment, 1),
        "segments_rising": f"{sum(rising)}/{len(rising)}",
        "updates_per_s_after_start": round((updates[-1][1] - first) / max(1e-9, updates[-1][0] - started), 1),
    }


def print_report(r: dict[str, Any]) -> None:
    lr = r["learning"]
    outcomes = (
        f"{r['resets_done']} done, {r['waits_for_person']} waits for a person ({r['person_rescues']} rescued), "
        f"in progress at end: {r['reset_in_progress_at_end']}"
    )
    rows = [
        (
            "run",
            f"{r['minutes']:g} min, {r['collector_steps']} training steps, {r['joint_state_samples']} joint states",
        ),
        ("limit violations", f"{r['limit_violations']} (worst excess {r['worst_excess_over_limits']})"),
        ("tolerance (5 sigma noise)", str(r["tolerance"])),
        ("falls", f"{r['falls']}; resets started {r['resets_started']} {r['reset_reasons']}"),
        ("reset outcomes", outcomes),
        ("every fall resolved", str(r["falls_resolved"])),
        ("time resetting", f"{r['reset_time_s']:.0f} s"),
        ("safety interventions", f"{r['safety_interventions']} {r['safety_counts']}"),
        ("learner", f"{r['learner_updates']} updates, {r['learner_transitions_stored']} stored"),
        ("policy version in use", str(r["policy_version"])),
        ("learning continued", f"{lr['continued']} ({lr.get('segments_rising', lr.get('why'))} segments rising)"),
        ("missed control deadlines", str(r["missed_deadlines"])),
        ("load average at end", str(r["loadavg_end"])),
        ("PASSED" if r["passed"] else "FAILED", ""),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--learning-starts", type=int, help="lower sac.learning_starts (default: the config's 1000)")
    ap.add_argument("--batch-size", type=int, help="lower sac.batch_size (default: the config's 256)")
    ap.add_argument("--no-person", dest="person", action="store_false", help="nobody rights a robot that fell over")
    ap.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID (default: 201-230 from the pid)")
    ap.add_argument("--json", help="also write the result as JSON here ('-': stdout only as JSON)")
    args = ap.parse_args()
    result = soak(args)
    if args.json == "-":
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
