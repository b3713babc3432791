# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The collector's real-time control loop at 50 Hz while a learner trains on the same machine.

A 50 Hz variant of config/quadruped_hw.yaml (written to a temporary file; learning_starts small, so the
learner trains within the run) drives the PyBullet stand-in emulating hardware (real time, sensor noise
and latency, routine resets). Processes: stand-in, learner (one torch thread), collector, armed with
`sac-robot arm` as on a robot. Timing comes from the collector's own diagnostics: it measures every
control-timer period with time.perf_counter over a sliding window as long as the measurement, and counts
missed deadlines (a period over 1.5× nominal). When the reset routine asks for a person, this script
rights the robot (sim/teleport_reset) and calls resume, as a person would.

    python bench/control_timing.py [--seconds 60] [--json out.json] [--domain-id N]

Nothing here uses ROS domain 100 (left to the long benchmarks) unless asked. The load average is printed:
compare numbers only between runs on an equally loaded machine.
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

from sac_robot.testing.rig import DiagnosticsMonitor, ProcessGroup, node_cmd, other_load, private_ros_env, write_config

COLLECTOR_ID = "timing"


def hw_config(path: Path, rate_hz: float | None, learning_starts: int | None, batch_size: int | None = None) -> Path:
    """config/quadruped_hw.yaml at ``rate_hz`` (None: as it is), with the learner's thresholds lowered."""
    overrides: dict[str, object] = {}
    if rate_hz is not None:
        overrides["robot.control_rate_hz"] = rate_hz
        overrides["robot.safety.sensor_timeout_s"] = 2.0 / rate_hz  # two missed messages, as at 20 Hz
        overrides["robot.send_batch"] = int(rate_hz)  # about one transitions message per second
    if learning_starts is not None:
        overrides["sac.learning_starts"] = learning_starts
    if batch_size is not None:
        overrides["sac.batch_size"] = batch_size  # updates begin at max(learning_starts, batch_size) transitions
    return write_config("quadruped_hw", path, overrides)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    env = private_ros_env(args.domain_id)
    with tempfile.TemporaryDirectory(prefix="control_timing_") as tmp:
        tmp_path = Path(tmp)
        config = hw_config(tmp_path / "quadruped_hw_50hz.yaml", args.rate, args.learning_starts)
        # SIGINT, then 30 s before SIGTERM: the learner writes its checkpoint on the way out
        procs = ProcessGroup(env, tmp_path, grace_s=30.0)
        collector = f"sac_robot/collector/{COLLECTOR_ID}"
        watch = ("stand_in", "collector") + (("learner",) if args.learner else ())
        monitor = DiagnosticsMonitor("bench_monitor", procs=procs, watch=watch)
        monitor.watch_joint_states()
        try:
            rt = {"realtime_priority": args.control_priority}  # as train_hw's control_priority launch argument
            stand_in = {"config": config, "emulate_hardware": True, "seed": 0, **rt}
            procs.start("stand_in", node_cmd("pybullet_stand_in", stand_in))
            if args.learner:
                learner = {
                    "config": config,
                    "run_dir": tmp_path / "run",
                    "total_steps": 10**9,
                    "torch_threads": 1,
                    "nice": args.learner_nice,
                }
                procs.start("learner", node_cmd("learner_node", learner))
            collector_params = {
                "config": config,
                "collector_id": COLLECTOR_ID,
                "timing_window_s": float(args.seconds),
                **rt,
            }
            procs.start("collector", node_cmd("collector_node", collector_params))
            monitor.spin_until(lambda: monitor.joint_state_count > 5, 120.0, "the stand-in's joint states")
            procs.arm()
            learner_ok = (
                (lambda: int(monitor.latest("sac_robot/learner").get("updates", "0")) > 0)
                if args.learner
                else (lambda: True)
            )
            warm_end = time.monotonic() + args.warmup

            def warmed() -> bool:
                monitor.rescue_if_waiting(collector)
                return learner_ok() and time.monotonic() > warm_end

            monitor.spin_until(warmed, args.warmup_timeout, "the learner to train")
            start_t, start_c = monitor.last(collector)  # receipt time, values
            start_l = dict(monitor.latest("sac_robot/learner"))
            load_start = os.getloadavg()
            while time.monotonic() - start_t < args.seconds + 1.5:  # the last report covers the whole window
                monitor.spin_for(0.5)
                monitor.rescue_if_waiting(collector)
            end_t, end_c = monitor.last(collector)
            end_l = dict(monitor.latest("sac_robot/learner"))
            load_end, heavy = os.getloadavg(), other_load()
        finally:
            monitor.close()
            procs.close()
    span = end_t - start_t
    periods = int(end_c["control_periods"]) - int(start_c["control_periods"])
    result = {
        "nominal_rate_hz": args.rate,
        "seconds": round(span, 1),
        "achieved_rate_hz": round(periods / span, 2),
        "window_rate_hz": float(end_c["control_rate_hz"]),
        "window_periods": int(end_c["control_window_periods"]),
        **{f"period_{k}_ms": float(end_c[f"control_period_{k}_ms"]) for k in ("p50", "p99", "max")},
        **{f"jitter_{k}_ms": float(end_c[f"control_jitter_{k}_ms"]) for k in ("p50", "p99", "max")},
        "missed_deadlines": int(end_c["missed_deadlines"]) - int(start_c["missed_deadlines"]),
        "missed_deadlines_total": int(end_c["missed_deadlines"]),
        "training_steps": int(end_c["steps"]) - int(start_c["steps"]),
        "resets": int(end_c["resets"]) - int(start_c["resets"]),
        "rescues": monitor.rescues,
        "learner": args.learner,
        "control_priority": args.control_priority,
        "learner_nice": args.learner_nice,
        "learner_updates": int(end_l.get("updates", 0)) - int(start_l.get("updates", 0)),
        "learner_updates_per_s": round((int(end_l.get("updates", 0)) - int(start_l.get("updates", 0))) / span, 1),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "cpu_count": os.cpu_count(),
        "busiest_processes_at_end": heavy,
    }
    return result


def print_table(r: dict[str, Any]) -> None:
    rows = [
        ("control rate (nominal)", f"{r['nominal_rate_hz']:g} Hz"),
        (
            "achieved rate",
            f"{r['achieved_rate_hz']:.2f} Hz over {r['seconds']:.0f} s ({r['window_rate_hz']:.2f} in window)",
        ),
        (
            "period p50 / p99 / max",
            f"{r['period_p50_ms']:.2f} / {r['period_p99_ms']:.2f} / {r['period_max_ms']:.2f} ms",
        ),
        (
            "jitter p50 / p99 / max",
            f"{r['jitter_p50_ms']:.2f} / {r['jitter_p99_ms']:.2f} / {r['jitter_max_ms']:.2f} ms",
        ),
        ("missed deadlines (>1.5x)", f"{r['missed_deadlines']} of {r['window_periods']} periods"),
        ("training steps, resets", f"{r['training_steps']}, {r['resets']} (rescued {r['rescues']}x)"),
        ("learner updates", f"{r['learner_updates']} ({r['learner_updates_per_s']:.1f}/s)" if r["learner"] else "off"),
        ("load average (1/5/15 min)", f"{r['loadavg_start']} -> {r['loadavg_end']} on {r['cpu_count']} cores"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measurement time, after the warm-up")
    ap.add_argument("--rate", type=float, default=50.0, help="control rate, Hz (default 50)")
    ap.add_argument("--learning-starts", type=int, default=200, help="sac.learning_starts (small: it trains)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after arming before measuring")
    ap.add_argument("--warmup-timeout", type=float, default=300.0, help="give up if the learner never trains")
    ap.add_argument("--no-learner", dest="learner", action="store_false", help="the collector alone")
    ap.add_argument("--control-priority", type=int, default=50, help="SCHED_FIFO of collector and stand-in (0: off)")
    ap.add_argument("--learner-nice", type=int, default=10, help="niceness added to the learner (train_hw's default)")
    ap.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID (default: 201-230 from the pid)")
    ap.add_argument("--json", help="also write the result as JSON here ('-': stdout only as JSON)")
    args = ap.parse_args()
    result = measure(args)
    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
