# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Training on hardware, rehearsed: the real collector (a lifecycle node, armed with `sac-robot arm`) against
synthetic sensor topics published by the test and against the PyBullet stand-in emulating hardware (real
time, sensor noise and latency, no teleporting resets).

* e-stop latches the safe-mode command from the next control step; release alone does not move; resume does
* a stopped IMU or joint-state stream puts the robot in safe mode within two control periods (50 Hz)
* NaN/inf in any sensor field never reaches joint_commands; a policy with NaN weights is refused
* an adversarial (saturating) policy keeps the emulated robot's measured joints within the description
* the reset routine stands the robot up, or asks for a person, who rights it and resumes
* the bring-up check passes on the emulated robot and names the joint of a swapped description

Every process runs on this test's own ROS domain (conftest's ros_env), limited to localhost, and is
stopped by the test (proc_reaper).
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pybullet  # noqa: F401  (an install requirement: these tests never skip)
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Bool, Float64MultiArray, UInt8MultiArray
from std_srvs.srv import Trigger

from sac_robot.nodes import ros_io as io
from sac_robot.nodes.pybullet_stand_in import EMULATED_STD, TELEPORT_RESET
from sac_robot.robot.description import load_robot

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(150)]

REPO = Path(__file__).resolve().parents[1]
QUAD = load_robot("quadruped")
HOME = QUAD.array("home")
LOWER, UPPER = QUAD.array("lower"), QUAD.array("upper")
VELOCITY, EFFORT = QUAD.array("velocity"), QUAD.array("effort")
MARGIN = 0.05  # quadruped_hw's safety.position_margin: commands stay this far inside the limits
STARTUP_S = 60.0  # a loaded 2-core machine may take a while to start rclpy, pybullet and torch-free nodes
RATE_HZ = 50.0  # the synthetic tests' control rate (a 50 Hz variant of quadruped_hw)
PERIOD_S = 1.0 / RATE_HZ
SENSOR_HZ = 250.0  # synthetic joint_states/IMU/odom rate: drivers publish faster than the control loop
# Two control periods from the last sensor message to the first safe-mode command: the watchdog fires at the
# first control step after the newest message is older than sensor_timeout_s, so timeout + one period must
# stay below two periods; 10 ms leaves one period plus 10 ms for scheduling and delivery.
WATCHDOG_TIMEOUT_S = 0.010
COLLECTOR = "sac_robot/collector/hw"


# --- configs -----------------------------------------------------------------------------------------------


def hw_config(tmp_path: Path, name: str, **robot: Any) -> Path:
    """config/quadruped_hw.yaml with fast resets (the routine's logic, not its pace, is under test)."""
    cfg = yaml.safe_load((REPO / "config" / "quadruped_hw.yaml").read_text(encoding="utf-8"))
    cfg["robot"]["reset"].update(settle_s=0.3, stand_up_s=0.5, verify_s=0.2)
    for key, value in robot.items():
        if isinstance(value, dict):
            cfg["robot"][key].update(value)
        else:
            cfg["robot"][key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def hw50_config(tmp_path: Path, name: str = "hw50", **safety: Any) -> Path:
    """A 50 Hz variant of quadruped_hw for synthetic sensors; long episodes (no reset mid-test)."""
    return hw_config(tmp_path, name, control_rate_hz=RATE_HZ, episode_seconds=600, safety=safety)


# --- processes ---------------------------------------------------------------------------------------------


def node_cmd(module: str, params: dict[str, object], script: str | None = None) -> list[str]:
    cmd = [sys.executable, script] if script else [sys.executable, "-m", f"sac_robot.nodes.{module}"]
    cmd += ["--ros-args"]
    for key, value in params.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        cmd += ["-p", f"{key}:={text}"]
    return cmd


class Procs:
    """The test's processes, with their output in log files that failures quote."""

    def __init__(self, reaper: Any, env: dict[str, str], log_dir: Path) -> None:
        self.reaper, self.env, self.log_dir = reaper, env, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, label: str, cmd: list[str]) -> subprocess.Popen:
        with open(self.log_dir / f"{label}.log", "w", encoding="utf-8") as log:
            self.procs[label] = self.reaper.spawn(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        return self.procs[label]

    def run(self, label: str, cmd: list[str], timeout_s: float) -> tuple[int | None, str]:
        """Start and wait; (exit code or None on timeout, output)."""
        proc = self.start(label, cmd)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.reaper.stop(proc)
            code = None
        return code, (self.log_dir / f"{label}.log").read_text(encoding="utf-8", errors="replace")

    def logs(self) -> str:
        out = []
        for label, proc in self.procs.items():
            text = (self.log_dir / f"{label}.log").read_text(encoding="utf-8", errors="replace")
            out.append(f"--- {label} (exit {proc.poll()}) ---\n{text[-3000:]}")
        return "\n".join(out)

    def check_alive(self, *labels: str) -> None:
        dead = {k: self.procs[k].returncode for k in labels if self.procs[k].poll() is not None}
        if dead:
            pytest.fail(f"node(s) exited early: {dead}\n{self.logs()}")

    def cli(self, label: str, *args: str, timeout_s: float = 60.0) -> tuple[int | None, str]:
        return self.run(label, [sys.executable, "-m", "sac_robot.cli.main", *args], timeout_s)

    def arm(self, *args: str) -> None:
        code, out = self.cli("arm", "arm", "--timeout", "40", *args)
        assert code == 0, f"sac-robot arm failed ({code}):\n{out}\n{self.logs()}"


# --- the test's own node: observes commands and diagnostics, publishes sensors, e-stops, calls services ----


class Observer:
    def __init__(self, context: Any, procs: Procs, watch: tuple[str, ...]) -> None:
        self.procs, self.watch = procs, watch
        self.node = rclpy.create_node("hardware_test", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.commands: list[tuple[int, np.ndarray]] = []  # (source timestamp ns, command)
        self.node.create_subscription(Float64MultiArray, io.JOINT_COMMANDS, self._on_command, io.COMMAND_QOS)
        self.diags: dict[str, list[dict[str, str]]] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.joint_states: list[np.ndarray] = []  # the stand-in's [position | velocity | effort]
        self.node.create_subscription(io.JointState, io.JOINT_STATES, self._on_joint_states, io.SENSOR_QOS)
        self.estop_pub = self.node.create_publisher(Bool, io.GLOBAL_ESTOP, io.ESTOP_QOS)
        self.policy_pub = self.node.create_publisher(UInt8MultiArray, io.POLICY, io.POLICY_QOS)

    def _on_command(self, msg: Float64MultiArray, info: Any) -> None:
        self.commands.append((int(info["source_timestamp"]), np.array(msg.data)))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            values["_level"], values["_message"] = str(status.level[0]), status.message
            self.diags.setdefault(status.name, []).append(values)

    def _on_joint_states(self, msg: io.JointState) -> None:
        if list(msg.name) == QUAD.joint_names:
            self.joint_states.append(np.concatenate([msg.position, msg.velocity, msg.effort]))

    def spin_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            self.procs.check_alive(*self.watch)
            if time.monotonic() > deadline:
                last = {k: v[-1] for k, v in self.diags.items() if v}
                pytest.fail(
                    f"timed out after {timeout_s:.0f} s waiting for {what}\nlast diagnostics: {last}\n"
                    f"{self.procs.logs()}"
                )
            self.executor.spin_once(timeout_sec=0.02)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: time.monotonic() >= end, seconds + 10.0, "time to pass")

    def diag(self, name: str = COLLECTOR) -> dict[str, str]:
        return self.diags[name][-1] if self.diags.get(name) else {}

    def wait_diag(
        self, predicate: Callable[[dict[str, str]], bool], timeout_s: float, what: str, name: str = COLLECTOR
    ) -> dict[str, str]:
        start = len(self.diags.get(name, []))
        self.spin_until(lambda: any(predicate(d) for d in self.diags.get(name, [])[start:]), timeout_s, what)
        return next(d for d in self.diags[name][start:] if predicate(d))

    def wait_training(self, timeout_s: float = STARTUP_S) -> dict[str, str]:
        """The routine reset that starts every activation is done and control steps are running."""
        first = self.wait_diag(
            lambda d: d["reset_phase"] == "DONE" and int(d["steps"]) > 0,
            timeout_s,
            "the start-up reset to finish and training steps to run",
        )
        return self.wait_diag(lambda d: int(d["steps"]) > int(first["steps"]), 10.0, "steps to increase")

    def call(self, service: str, timeout_s: float = 20.0) -> Trigger.Response:
        client = self.node.create_client(Trigger, service)
        self.spin_until(client.service_is_ready, STARTUP_S, f"service {service}")
        future = client.call_async(Trigger.Request())
        self.spin_until(future.done, timeout_s, f"the answer of {service}")
        self.node.destroy_client(client)
        return future.result()

    def estop(self, pressed: bool) -> int:
        """Publish the global e-stop; returns the time it was sent (ns, the clock of the source timestamps)."""
        sent = time.time_ns()
        self.estop_pub.publish(Bool(data=pressed))
        return sent

    def commands_since(self, t_ns: int) -> list[np.ndarray]:
        return [c for t, c in self.commands if t > t_ns]

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()


class SyntheticSensors:
    """joint_states, imu/data and odom of a robot standing still at home, from a thread at SENSOR_HZ.

    ``enabled[topic] = False`` stops a stream; ``corrupt(...)`` queues non-finite values into the next messages.
    """

    def __init__(self, node: Any) -> None:
        self.node = node
        self.pubs = {
            "joint_states": node.create_publisher(io.JointState, io.JOINT_STATES, io.SENSOR_QOS),
            "imu": node.create_publisher(io.Imu, io.IMU, io.SENSOR_QOS),
            "odom": node.create_publisher(io.Odometry, io.ODOM, io.SENSOR_QOS),
        }
        self.enabled = dict.fromkeys(self.pubs, True)
        self.last_sent_ns = dict.fromkeys(self.pubs, 0)
        self.stamp_offset = dict.fromkeys(self.pubs, 0.0)  # s added to a topic's stamps: < 0 emulates latency
        self.plan: deque[tuple[str, str, int, float]] = deque()  # (topic, field, index, value)
        self.corrupted = 0
        self.rng = np.random.default_rng(0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="synthetic-sensors", daemon=True)
        self._thread.start()

    def corrupt(self, topic: str, field: str, value: float, count: int) -> None:
        for _ in range(count):
            self.plan.append((topic, field, int(self.rng.integers(len(HOME))), value))

    def _message(self, topic: str, stamp: float) -> Any:
        n = len(HOME)
        if topic == "joint_states":
            msg = io.joint_state_msg(
                QUAD.joint_names, HOME + self.rng.normal(0, 1e-3, n), np.zeros(n), np.zeros(n), stamp
            )
        elif topic == "imu":
            msg = io.imu_msg(np.array([0.0, 0.0, 0.0, 1.0]), np.zeros(3), np.array([0.0, 0.0, 9.81]), stamp, "imu")
        else:
            msg = io.odom_msg(
                np.array([0.0, 0.0, 0.29]), np.array([0.0, 0.0, 0.0, 1.0]), np.zeros(3), stamp, "odom", "trunk"
            )
        if self.plan and self.plan[0][0] == topic:
            _, field, index, value = self.plan.popleft()
            self._apply(msg, field, index, value)
            self.corrupted += 1
        return msg

    @staticmethod
    def _apply(msg: Any, field: str, index: int, value: float) -> None:
        if field in ("position", "velocity", "effort"):
            values = list(getattr(msg, field))
            values[index] = value
            setattr(msg, field, values)
            return
        target = msg  # e.g. "orientation.w", "pose.pose.position.z"
        *path, last = field.split(".")
        for part in path:
            target = getattr(target, part)
        setattr(target, last, value)

    def _run(self) -> None:
        period = 1.0 / SENSOR_HZ
        next_t = time.monotonic()
        while not self._stop.is_set():
            stamp = time.time()
            for topic, pub in self.pubs.items():
                if self.enabled[topic]:
                    pub.publish(self._message(topic, stamp + self.stamp_offset[topic]))
                    self.last_sent_ns[topic] = time.time_ns()
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


@pytest.fixture
def rig(rclpy_context: Any, proc_reaper: Any, ros_env: dict[str, str], tmp_path: Path):
    """make(*labels) → (Procs, Observer watching those processes); SyntheticSensors via rig.sensors()."""
    made: list[Any] = []
    procs = Procs(proc_reaper, ros_env, tmp_path)

    class Rig:
        def __init__(self) -> None:
            self.procs = procs

        def observer(self, *watch: str) -> Observer:
            made.append(Observer(rclpy_context, procs, watch))
            return made[-1]

        def sensors(self, obs: Observer) -> SyntheticSensors:
            made.append(SyntheticSensors(obs.node))
            return made[-1]

    yield Rig()
    for each in reversed(made):
        each.close()


def start_collector(procs: Procs, config: Path, **params: object) -> None:
    procs.start("collector", node_cmd("collector_node", {"config": config, "collector_id": "hw", **params}))


def start_stand_in(procs: Procs, config: Path, script: str | None = None, **params: object) -> None:
    params = {"config": config, "emulate_hardware": True, "seed": 1, **params}
    procs.start("stand_in", node_cmd("pybullet_stand_in", params, script))


def held(commands: list[np.ndarray]) -> list[bool]:
    """Per command: equal to the one before, i.e. the hold safe mode (a random policy never repeats itself)."""
    return [i > 0 and np.array_equal(commands[i], commands[i - 1]) for i in range(len(commands))]


# --- a. e-stop ---------------------------------------------------------------------------------------------


def test_estop_latches_safe_mode_release_alone_does_not_move_resume_does(rig: Any, tmp_path: Path) -> None:
    t0 = time.monotonic()
    procs = rig.procs
    start_collector(procs, hw50_config(tmp_path))
    obs = rig.observer("collector")
    rig.sensors(obs)
    obs.spin_for(2.0)
    assert not obs.commands, "an unarmed (unconfigured) collector published joint commands"
    procs.arm()
    obs.wait_training()
    obs.spin_for(0.5)
    assert not any(held([c for _, c in obs.commands[-20:]])), "commands repeat while training: no safe mode to see"

    pressed = obs.estop(True)
    obs.spin_for(1.0)
    prior = [c for t, c in obs.commands if t <= pressed][-1]
    after = [prior] + obs.commands_since(pressed)
    flags = held(after)
    first = flags.index(True) if True in flags else len(flags)
    # The estop may arrive just after a control step began: at most that one command differs from the hold.
    assert first <= 2, f"safe mode began {first} commands after the e-stop"
    assert len(after) - first >= 20 and all(flags[first:]), "not every command after the e-stop was the hold"
    safe = after[first]
    assert (
        obs.wait_diag(lambda d: d["estop"] == "pressed", 5.0, "estop pressed in diagnostics")["in_safe_mode"] == "true"
    )

    released = obs.estop(False)
    obs.spin_for(1.0)
    still = obs.commands_since(released)
    assert len(still) >= 20 and all(np.array_equal(c, safe) for c in still), (
        "releasing the e-stop alone changed the commands"
    )
    obs.wait_diag(lambda d: d["estop"].startswith("latched"), 5.0, "the released-but-latched e-stop")

    response = obs.call("sac_robot/resume")
    assert response.success, response.message
    resumed = time.time_ns()
    obs.spin_for(1.0)
    moving = obs.commands_since(resumed)
    assert len(moving) >= 20 and not any(held(moving)), "resume did not restart motion"

    # Disarmed (lifecycle deactivate): nothing more is published on joint_commands.
    procs.arm("--disarm")
    disarmed = time.time_ns()
    obs.spin_for(1.0)
    late = [t for t, _ in obs.commands if t > disarmed]
    assert not late, f"{len(late)} commands after the collector was deactivated"
    assert obs.wait_diag(lambda d: d["lifecycle"].startswith("inactive"), 5.0, "inactive diagnostics")
    print(f"e-stop: hold from command {first} after the e-stop; {time.monotonic() - t0:.1f} s")


# --- b. sensor watchdog --------------------------------------------------------------------------------------


def test_stopped_imu_or_joint_states_give_safe_mode_within_two_control_periods(rig: Any, tmp_path: Path) -> None:
    t0 = time.monotonic()
    procs = rig.procs
    start_collector(procs, hw50_config(tmp_path, sensor_timeout_s=WATCHDOG_TIMEOUT_S))
    obs = rig.observer("collector")
    sensors = rig.sensors(obs)
    procs.arm()
    obs.wait_training()
    latencies = {}
    for topic in ("imu", "joint_states", "imu", "joint_states"):
        obs.spin_until(lambda: not any(held([c for _, c in obs.commands[-6:]])), 10.0, "motion before the stop")
        sensors.enabled[topic] = False
        obs.spin_for(0.3)
        last = sensors.last_sent_ns[topic]
        stamped = [(t, c) for t, c in obs.commands if t > last - 200_000_000]  # a little history for `held`
        flags = held([c for _, c in stamped])
        first = next((t for (t, _), h in zip(stamped, flags, strict=True) if h and t > last), None)
        assert first is not None, f"no safe-mode command after {topic} stopped"
        latencies.setdefault(topic, []).append((first - last) * 1e-9)
        assert all(flags[-5:]), f"safe mode did not last while {topic} was silent"
        sensors.enabled[topic] = True
        obs.spin_for(0.3)
    worst = max(max(v) for v in latencies.values())
    report = {k: [f"{x * 1e3:.1f} ms" for x in v] for k, v in latencies.items()}
    assert worst <= 2 * PERIOD_S, f"safe mode later than two control periods ({2 * PERIOD_S * 1e3:.0f} ms): {report}"
    diag = obs.wait_diag(lambda d: "count.stale_imu" in d and "count.stale_joint_states" in d, 5.0, "stale counts")
    print(f"watchdog: {report}, missed deadlines {diag['missed_deadlines']}, {time.monotonic() - t0:.1f} s")


# --- c. non-finite sensors, NaN policy -----------------------------------------------------------------------

CORRUPTIONS = [
    ("joint_states", "position"),
    ("joint_states", "velocity"),
    ("joint_states", "effort"),
    ("imu", "orientation.w"),
    ("imu", "angular_velocity.y"),
    ("imu", "linear_acceleration.z"),
    ("odom", "pose.pose.position.z"),
    ("odom", "twist.twist.linear.x"),
]


def scaled_policy_bytes(pipe: Any, scale: float, run_id: str, version: int, nan: bool = False) -> bytes:
    """An SAC agent's exported policy with its weights scaled by ``scale``, or poisoned with NaN.

    1e3 saturates every action (adversarial); 0 gives the home pose with a little noise (a still policy: the
    robot stays up, so 1 Hz diagnostics catch the reset routine's DONE between episodes).
    """
    from sac_robot.core.atomic_io import encode_tensors
    from sac_robot.core.config import SACConfig
    from sac_robot.core.export import policy_tensors_and_meta
    from sac_robot.core.sac import SAC

    ones = np.ones(pipe.act_dim)
    agent = SAC(pipe.obs_dim, pipe.act_dim, -ones, ones, SACConfig(hidden_sizes=[32, 32], device="cpu"), seed=3)
    tensors, meta = policy_tensors_and_meta(agent, run_id=run_id, version=version)
    for key in tensors:
        if key.endswith((".weight", ".bias")):
            tensors[key] = tensors[key] * np.float32(scale)
    if scale == 0.0:
        tensors["head.bias"][pipe.act_dim :] = -10.0  # log_std at its minimum: no exploration noise to speak of
    if nan:
        tensors["head.weight"][0, 0] = np.nan
    return encode_tensors(tensors, meta)


def test_nonfinite_sensor_values_never_reach_commands_and_nan_policy_is_refused(rig: Any, tmp_path: Path) -> None:
    from sac_robot.core.config import load_config
    from sac_robot.policy_runtime import FrozenPolicy
    from sac_robot.robot.pipeline import build_pipeline

    t0 = time.monotonic()
    procs = rig.procs
    config = hw50_config(tmp_path)
    pipe = build_pipeline(load_config(config).robot)
    start_collector(procs, config)
    obs = rig.observer("collector")
    sensors = rig.sensors(obs)
    procs.arm()
    obs.wait_training()
    bad_before = int(obs.diag()["bad_messages"])
    start = time.time_ns()
    for topic, field in CORRUPTIONS:
        for value in (math.nan, math.inf, -math.inf):
            sensors.corrupt(topic, field, value, 3)
            obs.spin_until(lambda: not sensors.plan, 10.0, f"corrupted {topic} {field}")
            obs.spin_for(0.05)
    obs.spin_for(0.5)
    commands = np.array(obs.commands_since(start))
    assert len(commands) > RATE_HZ, "too few commands during the corruption"
    assert np.all(np.isfinite(commands)), "a non-finite value reached joint_commands"
    assert np.all(commands >= LOWER + MARGIN - 1e-9) and np.all(commands <= UPPER - MARGIN + 1e-9)
    sent = sensors.corrupted
    diag = obs.wait_diag(lambda d: int(d["bad_messages"]) - bad_before >= 0.8 * sent, 10.0, "rejections counted")
    rejected = int(diag["bad_messages"]) - bad_before

    # A policy with NaN weights is refused (policy_version stays 0); a finite one of the same run is taken.
    poisoned = scaled_policy_bytes(pipe, 1.0, "nan-run", 1, nan=True)
    obs.policy_pub.publish(UInt8MultiArray(data=poisoned))
    diag = obs.wait_diag(lambda d: int(d["bad_messages"]) > rejected + bad_before, 15.0, "the NaN policy refused")
    # no policy in use: "no policy yet", or (no learner here, so nothing is acknowledged) "acting randomly"
    assert diag["policy_version"] == "0"
    assert diag["learner"].startswith("no policy") or "acting randomly" in diag["learner"], diag["learner"]
    good = scaled_policy_bytes(pipe, 1.0, "nan-run", 2)
    assert np.all(np.isfinite(FrozenPolicy.from_bytes(good).act(np.zeros(pipe.obs_dim, np.float32))))
    obs.policy_pub.publish(UInt8MultiArray(data=good))
    obs.wait_diag(lambda d: d["policy_version"] == "2", 15.0, "the finite policy taken")
    print(
        f"non-finite: {sent} corrupted messages, {rejected} rejected, {len(commands)} finite commands, "
        f"{time.monotonic() - t0:.1f} s"
    )


# --- d. adversarial policy on the emulated robot, e. reset routine -------------------------------------------

# Measured values may pass a limit by sensor noise only: 5 standard deviations of the emulated noise
# (EMULATED_STD; P(|N| > 5σ) ≈ 6e-7 per sample, ~1e-3 over the ~2000 samples × 12 joints of a run). Position
# targets stay MARGIN (0.05 rad) inside the limits and PD overshoot stays within it; efforts are the applied
# torques, which the actuator model clips to the effort limit.
POSITION_TOL = 5 * EMULATED_STD["joint_position"]
VELOCITY_TOL = 5 * EMULATED_STD["joint_velocity"]
EFFORT_TOL = 5 * EMULATED_STD["joint_effort"]


def test_routine_stands_robot_up_and_a_saturating_policy_stays_within_limits(rig: Any, tmp_path: Path) -> None:
    from sac_robot.core.config import load_config
    from sac_robot.policy_runtime import FrozenPolicy
    from sac_robot.robot.pipeline import build_pipeline

    t0 = time.monotonic()
    procs = rig.procs
    config = hw_config(tmp_path, "hw", reset={"max_retries": 1})
    pipe = build_pipeline(load_config(config).robot)
    start_stand_in(procs, config, initial_pose="home")
    start_collector(procs, config)
    obs = rig.observer("collector", "stand_in")
    obs.spin_until(lambda: len(obs.joint_states) > 5, STARTUP_S, "the stand-in's joint_states")
    obs.policy_pub.publish(UInt8MultiArray(data=scaled_policy_bytes(pipe, 0.0, "hw", 1)))  # still: stays up
    procs.arm()
    # e. started near home, the routine stands the robot up and training begins.
    diag = obs.wait_training()
    assert "armed" in diag["reset_reasons"] and diag["waits_for_person"] == "0" and diag["policy_version"] == "1"

    # d. a policy whose weights are scaled by 1e3 saturates every action: 10 s of it on the emulated robot.
    # It throws the robot over; whenever the routine gives up, the test rights it as a person would.
    data = scaled_policy_bytes(pipe, 1e3, "hw", 2)
    policy = FrozenPolicy.from_bytes(data)
    probe = np.random.default_rng(0).normal(size=(20, pipe.obs_dim)).astype(np.float32)
    assert np.mean(np.abs([policy.act(o) for o in probe]) > 0.99) > 0.9, "the policy does not saturate"
    first_state, steps = len(obs.joint_states), int(obs.diag()["steps"])
    obs.policy_pub.publish(UInt8MultiArray(data=data))
    rescues, end = 0, time.monotonic() + 10.0
    while time.monotonic() < end:
        obs.spin_for(0.5)
        if obs.diag().get("reset_phase") == "WAIT_FOR_PERSON":
            assert obs.call(TELEPORT_RESET).success and obs.call("sac_robot/resume").success
            rescues += 1
    diag = obs.wait_diag(lambda d: d["policy_version"] == "2", 15.0, "the adversarial policy in use")
    assert int(diag["steps"]) > steps, "no control step ran the adversarial policy"
    states = np.array(obs.joint_states[first_state:])
    n = len(HOME)
    q, qd, tau = states[:, :n], states[:, n : 2 * n], states[:, 2 * n :]
    assert len(states) > 100
    assert np.ptp(q, axis=0).max() > 0.2, "the policy did not move the robot"
    low, high = (q < LOWER - POSITION_TOL).sum(), (q > UPPER + POSITION_TOL).sum()
    assert low == 0 and high == 0, f"positions beyond limits: {low} below, {high} above"
    fast = (np.abs(qd) > VELOCITY + VELOCITY_TOL).sum()
    assert fast == 0, f"{fast} velocity readings beyond the limits (max |qd| {np.abs(qd).max():.2f})"
    strong = (np.abs(tau) > EFFORT + EFFORT_TOL).sum()
    assert strong == 0, f"{strong} effort readings beyond the limits (max |tau| {np.abs(tau).max():.2f})"
    print(
        f"adversarial: {len(states)} joint states, {int(diag['steps']) - steps} policy steps, {rescues} rescues, "
        f"max |q - home| {np.abs(q - HOME).max():.2f} rad, max |qd| {np.abs(qd).max():.2f} rad/s, "
        f"max |tau| {np.abs(tau).max():.1f} N·m, reasons {diag['reset_reasons']}, {time.monotonic() - t0:.1f} s"
    )


def test_robot_on_its_side_waits_for_a_person_who_rights_it(rig: Any, tmp_path: Path) -> None:
    from sac_robot.core.config import load_config
    from sac_robot.robot.pipeline import build_pipeline

    t0 = time.monotonic()
    procs = rig.procs
    config = hw_config(tmp_path, "hw_side", reset={"max_retries": 1})
    start_stand_in(procs, config, initial_pose="side")
    start_collector(procs, config)
    obs = rig.observer("collector", "stand_in")
    obs.spin_until(lambda: len(obs.joint_states) > 5, STARTUP_S, "the stand-in's joint_states")
    pipe = build_pipeline(load_config(config).robot)
    obs.policy_pub.publish(UInt8MultiArray(data=scaled_policy_bytes(pipe, 0.0, "hw", 1)))  # still: stays up
    procs.arm()
    waiting = obs.wait_diag(lambda d: d["reset_phase"] == "WAIT_FOR_PERSON", 30.0, "a wait for a person")
    assert "not upright after 2 attempts" in waiting["reset_status"], waiting["reset_status"]
    assert waiting["waits_for_person"] == "1" and int(waiting["_level"]) >= 1
    steps = int(waiting["steps"])

    assert obs.call(TELEPORT_RESET).success  # the person rights the robot
    response = obs.call("sac_robot/resume")
    assert response.success, response.message
    done = obs.wait_diag(lambda d: d["reset_phase"] == "DONE" and int(d["steps"]) > steps, 30.0, "training again")
    obs.wait_diag(lambda d: int(d["steps"]) > int(done["steps"]), 10.0, "steps to keep increasing")
    print(f"wait for person: '{waiting['reset_status']}'; {time.monotonic() - t0:.1f} s")


# --- f. bring-up ---------------------------------------------------------------------------------------------

# The robot hangs on a virtual gantry (PyBulletRobot's fixed_base, raised off the ground), as README step 4
# asks: standing, its legs carry the body and every joint moves the others. The stand-in node has no
# parameter for it, so the test runs the node with PyBulletRobot wrapped.
HANGING_STAND_IN = """
import sys
import numpy as np
import sac_robot.nodes.pybullet_stand_in as stand_in
from sac_robot.sim.pybullet_robot import PyBulletRobot

class OnGantry(PyBulletRobot):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, fixed_base=True, **kwargs)

    def reset(self, seed=None, pose=None, base_position=None, base_orientation=None):
        base = np.array([0.0, 0.0, 1.0]) if base_position is None else base_position
        return super().reset(seed, pose, base, base_orientation)

stand_in.PyBulletRobot = OnGantry
sys.exit(stand_in.main())
"""
FAST_BRINGUP = ("--speed", "2.0", "--settle-s", "0.25")  # the check's logic, at its fastest pace


def test_bringup_passes_on_the_emulated_robot_and_names_a_swapped_joint(rig: Any, tmp_path: Path) -> None:
    t0 = time.monotonic()
    procs = rig.procs
    script = tmp_path / "hanging_stand_in.py"
    script.write_text(HANGING_STAND_IN, encoding="utf-8")
    config = hw_config(tmp_path, "hw")
    start_stand_in(procs, config, script=str(script))
    obs = rig.observer("stand_in")
    obs.spin_until(lambda: len(obs.joint_states) > 5, STARTUP_S, "the stand-in's joint_states")

    code, out = procs.cli("bringup_ok", "bringup", "--config", str(config), *FAST_BRINGUP, timeout_s=90.0)
    assert code == 0, out
    assert out.count(" passed ") == len(HOME) and "bring-up PASSED" in out

    robot = yaml.safe_load((REPO / "config" / "robots" / "quadruped.yaml").read_text(encoding="utf-8"))
    joints = robot["joints"]
    joints[0], joints[3] = joints[3], joints[0]  # FL_hip_joint ↔ FR_hip_joint: same limits, crossed wiring
    robot["urdf"] = str(QUAD.urdf_path())
    swapped_robot = tmp_path / "quadruped_swapped.yaml"
    swapped_robot.write_text(yaml.safe_dump(robot), encoding="utf-8")
    swapped = hw_config(tmp_path, "hw_swapped", description=str(swapped_robot))
    assert obs.call(TELEPORT_RESET).success  # back to home (the deadman let the legs hang after the first run)
    code, out = procs.cli("bringup_swapped", "bringup", "--config", str(swapped), *FAST_BRINGUP, timeout_s=90.0)
    assert code == 1, out
    verdict = next(line for line in out.splitlines() if line.startswith("bring-up FAILED"))
    assert "FR_hip_joint" in verdict and "FL_hip_joint" in verdict and "joint order mismatch" in verdict, verdict
    print(f"bring-up: passed, then '{verdict}'; {time.monotonic() - t0:.1f} s")
