# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The hardware-emulation rig the node tests share: node processes with their logs (Procs: the shared
sac_robot/testing/rig.py ProcessGroup), the test's own node that watches joint_commands and /diagnostics and
calls services (Observer: the rig's DiagnosticsMonitor with what only these tests use), synthetic sensor topics
of a quadruped standing still (SyntheticSensors), and the quadruped_hw configs they run with.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pybullet  # noqa: F401  (an install requirement: these tests never skip)
from std_msgs.msg import Bool, Float64MultiArray, UInt8MultiArray
from std_srvs.srv import Trigger

from sac_robot.nodes import ros_io as io
from sac_robot.robot.description import load_robot
from sac_robot.testing.rig import DiagnosticsMonitor, ProcessGroup, Reaper, node_cmd, write_config

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
    overrides: dict[str, object] = {
        "robot.reset.settle_s": 0.3,
        "robot.reset.stand_up_s": 0.5,
        "robot.reset.verify_s": 0.2,
    }
    for key, value in robot.items():
        if isinstance(value, dict):
            overrides.update({f"robot.{key}.{k}": v for k, v in value.items()})
        else:
            overrides[f"robot.{key}"] = value
    return write_config(REPO / "config" / "quadruped_hw.yaml", tmp_path / f"{name}.yaml", overrides)


def hw50_config(tmp_path: Path, name: str = "hw50", **safety: Any) -> Path:
    """A 50 Hz variant of quadruped_hw for synthetic sensors; long episodes (no reset mid-test)."""
    return hw_config(tmp_path, name, control_rate_hz=RATE_HZ, episode_seconds=600, safety=safety)


# --- processes ---------------------------------------------------------------------------------------------


# node_cmd(module, {param: value}, script=...): sac_robot.testing.rig.node_cmd, imported above for the tests.
Procs = ProcessGroup  # start(label, cmd), run, cli, arm, logs, check_alive(*labels), stop; .reaper: proc_reaper


# --- the test's own node: observes commands and diagnostics, publishes sensors, e-stops, calls services ----


class Observer(DiagnosticsMonitor):
    """The rig's diagnostics monitor (on the test's rclpy context, watching ``watch``) that also records the
    joint commands and the stand-in's joint states, and publishes the e-stop and policies."""

    spin_s = 0.02

    def __init__(self, context: Any, procs: Procs, watch: tuple[str, ...]) -> None:
        super().__init__("hardware_test", context=context, procs=procs, watch=watch, depth=10)
        self.commands: list[tuple[int, np.ndarray]] = []  # (source timestamp ns, command)
        self.node.create_subscription(Float64MultiArray, io.JOINT_COMMANDS, self._on_command, io.COMMAND_QOS)
        self.joint_states: list[np.ndarray] = []  # the stand-in's [position | velocity | effort]
        self.node.create_subscription(io.JointState, io.JOINT_STATES, self._on_joint_states, io.SENSOR_QOS)
        self.estop_pub = self.node.create_publisher(
            Bool, io.GLOBAL_ESTOP, 10
        )  # as `ros2 topic pub` does: reliable, volatile
        self.policy_pub = self.node.create_publisher(UInt8MultiArray, io.POLICY, io.POLICY_QOS)

    def _on_command(self, msg: Float64MultiArray, info: Any) -> None:
        self.commands.append((int(info["source_timestamp"]), np.array(msg.data)))

    def _on_joint_states(self, msg: io.JointState) -> None:
        if list(msg.name) == QUAD.joint_names:
            self.joint_states.append(np.concatenate([msg.position, msg.velocity, msg.effort]))

    def diag(self, name: str = COLLECTOR) -> dict[str, str]:
        return self.latest(name)

    def wait_diag(
        self, predicate: Callable[[dict[str, str]], bool], timeout_s: float, what: str, name: str = COLLECTOR
    ) -> dict[str, str]:
        start = len(self.diags.get(name, []))
        self.spin_until(lambda: any(predicate(d) for d in self.diags.get(name, [])[start:]), timeout_s, what)
        return next(d for d in self.diags[name][start:] if predicate(d))

    def wait_training(self, timeout_s: float = STARTUP_S) -> dict[str, str]:
        """The routine reset that starts every activation is done, the e-stop's start-up grace is over and
        control steps are running."""
        first = self.wait_diag(
            lambda d: d["reset_phase"] == "DONE" and int(d["steps"]) > 0 and d.get("estop_known") == "true",
            timeout_s,
            "the start-up reset to finish and training steps to run",
        )
        return self.wait_diag(lambda d: int(d["steps"]) > int(first["steps"]), 10.0, "steps to increase")

    def call(self, service: str, timeout_s: float = 20.0, ready_timeout_s: float = STARTUP_S) -> Trigger.Response:
        return super().call(service, timeout_s, ready_timeout_s)

    def estop(self, pressed: bool) -> int:
        """Publish the global e-stop; returns the time it was sent (ns, the clock of the source timestamps)."""
        sent = time.time_ns()
        self.estop_pub.publish(Bool(data=pressed))
        return sent

    def commands_since(self, t_ns: int) -> list[np.ndarray]:
        return [c for t, c in self.commands if t > t_ns]


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


def make_rig(rclpy_context: Any, proc_reaper: Reaper, ros_env: dict[str, str], tmp_path: Path):
    """The ``rig`` fixture (conftest.py): make(*labels) → (Procs, Observer watching those processes); SyntheticSensors via rig.sensors()."""
    made: list[Any] = []
    procs = Procs(ros_env, tmp_path, cwd=REPO, reaper=proc_reaper)

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
    procs.start("stand_in", node_cmd("pybullet_stand_in", params, script=script))


def held(commands: list[np.ndarray]) -> list[bool]:
    """Per command: equal to the one before, i.e. the hold safe mode (a random policy never repeats itself)."""
    return [i > 0 and np.array_equal(commands[i], commands[i - 1]) for i in range(len(commands))]


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
