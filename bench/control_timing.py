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
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR_ID = "timing"


def private_ros_env(domain_id: int | None) -> dict[str, str]:
    """This process's and its children's ROS settings: localhost discovery on a domain of their own."""
    domain = domain_id if domain_id is not None else 201 + os.getpid() % 30  # 201-230: not tests', not 100
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ.pop("ROS_STATIC_PEERS", None)
    os.environ["PYTHONUNBUFFERED"] = "1"
    return dict(os.environ)


def hw_config(path: Path, rate_hz: float | None, learning_starts: int | None, batch_size: int | None = None) -> Path:
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "quadruped_hw.yaml").read_text(encoding="utf-8"))
    if rate_hz is not None:
        cfg["robot"]["control_rate_hz"] = rate_hz
        cfg["robot"]["safety"]["sensor_timeout_s"] = 2.0 / rate_hz  # two missed messages, as at 20 Hz
        cfg["robot"]["send_batch"] = int(rate_hz)  # about one transitions message per second
    if learning_starts is not None:
        cfg["sac"]["learning_starts"] = learning_starts
    if batch_size is not None:
        cfg["sac"]["batch_size"] = batch_size  # updates begin at max(learning_starts, batch_size) transitions
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def node_cmd(module: str, **params: object) -> list[str]:
    cmd = [sys.executable, "-m", f"sac_robot.nodes.{module}", "--ros-args"]
    for key, value in params.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        cmd += ["-p", f"{key}:={text}"]
    return cmd


class Processes:
    """Child processes in their own sessions, logs in a folder; stop() ends each one and its group."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, label: str, cmd: list[str]) -> subprocess.Popen:
        with open(self.log_dir / f"{label}.log", "w", encoding="utf-8") as log:
            proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[label] = proc
        return proc

    def run(self, label: str, cmd: list[str], timeout_s: float) -> int:
        proc = self.start(label, cmd)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(label)
            return -1

    def check_alive(self, *labels: str) -> None:
        for label in labels:
            code = self.procs[label].poll()
            if code is not None:
                raise RuntimeError(f"{label} exited with {code}:\n{self.tail(label)}")

    def tail(self, label: str, chars: int = 3000) -> str:
        return (self.log_dir / f"{label}.log").read_text(encoding="utf-8", errors="replace")[-chars:]

    def stop(self, *labels: str, grace_s: float = 30.0) -> None:
        """SIGTERM (nodes shut down cleanly on it; the learner writes its checkpoint), then SIGKILL the group."""
        for label in labels or tuple(reversed(self.procs)):
            proc = self.procs[label]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left in its group
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()


class Monitor:
    """Diagnostics of every node, the robot's joint states, and a person's hands (teleport, resume)."""

    def __init__(self, on_joint_states: Any = None) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor

        from sac_robot.nodes import ros_io as io

        rclpy.init()
        self.node = rclpy.create_node("bench_monitor")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.diags: dict[str, list[tuple[float, dict[str, str]]]] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.joint_state_count = 0
        self.on_joint_states = on_joint_states
        self.node.create_subscription(io.JointState, io.JOINT_STATES, self._on_joint_states, io.SENSOR_QOS)
        self.rescues = 0
        self.last_rescue = -1e9

    def _on_diag(self, msg: Any) -> None:
        now = time.monotonic()
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            values["_level"], values["_message"] = str(status.level[0]), status.message
            self.diags.setdefault(status.name, []).append((now, values))

    def _on_joint_states(self, msg: Any) -> None:
        self.joint_state_count += 1
        if self.on_joint_states is not None:
            self.on_joint_states(msg)

    def latest(self, name: str) -> dict[str, str]:
        return self.diags[name][-1][1] if self.diags.get(name) else {}

    def spin_for(self, seconds: float, procs: Processes | None = None, watch: tuple[str, ...] = ()) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
            if procs is not None:
                procs.check_alive(*watch)

    def wait(self, done: Any, timeout_s: float, what: str, procs: Processes, watch: tuple[str, ...]) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            self.spin_for(0.2, procs, watch)

    def call(self, service: str, timeout_s: float = 10.0) -> tuple[bool, str]:
        from std_srvs.srv import Trigger

        client = self.node.create_client(Trigger, service)
        try:
            if not client.wait_for_service(timeout_sec=timeout_s):
                return False, f"{service} not available"
            future = client.call_async(Trigger.Request())
            end = time.monotonic() + timeout_s
            while not future.done() and time.monotonic() < end:
                self.executor.spin_once(timeout_sec=0.05)
            result = future.result()
            return (bool(result.success), result.message) if result is not None else (False, "no answer")
        finally:
            self.node.destroy_client(client)

    def rescue_if_waiting(self, collector: str) -> bool:
        """A person rights a robot whose reset routine gave up, and says go on."""
        if not self.diags.get(collector):
            return False
        received, latest = self.diags[collector][-1]
        if latest.get("reset_phase") != "WAIT_FOR_PERSON" or received < self.last_rescue + 1.5:
            return False  # (a report sent before the last rescue took effect is no new request)
        ok, _ = self.call("sim/teleport_reset")
        ok = ok and self.call("sac_robot/resume")[0]
        self.rescues += int(ok)
        self.last_rescue = time.monotonic()
        return ok

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown()


def arm(procs: Processes, timeout_s: float = 60.0) -> None:
    code = procs.run("arm", [sys.executable, "-m", "sac_robot.cli.main", "arm", "--timeout", "40"], timeout_s)
    if code != 0:
        raise RuntimeError(f"sac-robot arm failed ({code}):\n{procs.tail('arm')}")


def other_load() -> list[str]:
    """The heaviest other processes (what loaded the machine during the run)."""
    out = subprocess.run(
        ["ps", "-eo", "pcpu,ni,args", "--sort=-pcpu"], check=False, capture_output=True, text=True
    ).stdout
    own = str(os.getpid())
    lines = [line.strip()[:110] for line in out.splitlines()[1:6] if own not in line]
    return lines


def measure(args: argparse.Namespace) -> dict[str, Any]:
    env = private_ros_env(args.domain_id)
    with tempfile.TemporaryDirectory(prefix="control_timing_") as tmp:
        tmp_path = Path(tmp)
        config = hw_config(tmp_path / "quadruped_hw_50hz.yaml", args.rate, args.learning_starts)
        procs = Processes(env, tmp_path)
        monitor = Monitor()
        collector = f"sac_robot/collector/{COLLECTOR_ID}"
        watch = ("stand_in", "collector") + (("learner",) if args.learner else ())
        try:
            rt = {"realtime_priority": args.control_priority}  # as train_hw's control_priority launch argument
            procs.start("stand_in", node_cmd("pybullet_stand_in", config=config, emulate_hardware=True, seed=0, **rt))
            if args.learner:
                procs.start(
                    "learner",
                    node_cmd(
                        "learner_node",
                        config=config,
                        run_dir=tmp_path / "run",
                        total_steps=10**9,
                        torch_threads=1,
                        nice=args.learner_nice,
                    ),
                )
            procs.start(
                "collector",
                node_cmd(
                    "collector_node",
                    config=config,
                    collector_id=COLLECTOR_ID,
                    timing_window_s=float(args.seconds),
                    **rt,
                ),
            )
            monitor.wait(lambda: monitor.joint_state_count > 5, 120.0, "the stand-in's joint states", procs, watch)
            arm(procs)
            learner_ok = (
                (lambda: int(monitor.latest("sac_robot/learner").get("updates", "0")) > 0)
                if args.learner
                else (lambda: True)
            )
            warm_end = time.monotonic() + args.warmup

            def warmed() -> bool:
                monitor.rescue_if_waiting(collector)
                return learner_ok() and time.monotonic() > warm_end

            monitor.wait(warmed, args.warmup_timeout, "the learner to train", procs, watch)
            start_t, start_c = monitor.diags[collector][-1]  # receipt time, values
            start_l = dict(monitor.latest("sac_robot/learner"))
            load_start = os.getloadavg()
            while time.monotonic() - start_t < args.seconds + 1.5:  # the last report covers the whole window
                monitor.spin_for(0.5, procs, watch)
                monitor.rescue_if_waiting(collector)
            end_t, end_c = monitor.diags[collector][-1]
            end_l = dict(monitor.latest("sac_robot/learner"))
            load_end, heavy = os.getloadavg(), other_load()
        finally:
            monitor.close()
            procs.stop()
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
