# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The PyBullet stand-in as a ROS robot: it stands, senses gravity, resets, is deterministic in lockstep,
trips its deadman in real time, and refuses to teleport when it emulates hardware.

Each test starts the node as a subprocess on its own ROS domain (conftest's ros_env) and talks to it
from a node of its own (rclpy_context); proc_reaper stops the subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pybullet  # noqa: F401  (an install requirement: these tests never skip)
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sac_robot.nodes import ros_io as io
from sac_robot.nodes.pybullet_stand_in import NO_TELEPORT, TELEPORT_RESET
from sac_robot.robot.description import load_robot
from sac_robot.robot.pipeline import parse_robot_config
from sac_robot.robot.rewards import compute_reward
from sac_robot.robot.state import RobotState

pytestmark = [pytest.mark.ros, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[1]
QUADRUPED = load_robot("quadruped")
HOME = QUADRUPED.array("home")
LOWER, UPPER = QUADRUPED.array("lower"), QUADRUPED.array("upper")
STARTUP_S = 40.0  # a loaded 2-core machine may take a while to import rclpy, torch-free as we are
CONTROL_DT = 0.05  # quadruped.yaml: 20 Hz


def start_stand_in(proc_reaper, ros_env, log: Path, namespace: str = "", **params: object):
    cmd = [sys.executable, "-m", "sac_robot.nodes.pybullet_stand_in", "--ros-args"]
    if namespace:
        cmd += ["-r", f"__ns:=/{namespace}"]
    for key, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        cmd += ["-p", f"{key}:={text}"]
    with open(log, "w", encoding="utf-8") as out:  # the child keeps its own descriptor
        return proc_reaper.spawn(cmd, env=ros_env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


class Driver:
    """The test's side of one stand-in: records every topic, sends commands, calls the reset services."""

    def __init__(self, node, executor, namespace: str, lockstep: bool, proc, log: Path) -> None:
        self.node, self.executor, self.proc, self.log = node, executor, proc, log
        prefix = f"/{namespace}/" if namespace else ""
        qos = io.lockstep_qos(lockstep)
        self.msgs: dict[str, list] = {k: [] for k in ("joints", "imu", "odom", "feet", "priv")}
        for key, msg_type, topic in (
            ("joints", io.JointState, io.JOINT_STATES),
            ("imu", io.Imu, io.IMU),
            ("odom", io.Odometry, io.ODOM),
            ("feet", io.JointState, io.FOOT_CONTACTS),
            ("priv", io.Vector3Stamped, io.PRIVILEGED),
        ):
            node.create_subscription(msg_type, prefix + topic, self.msgs[key].append, qos)
        self.diags: list[dict[str, str]] = []
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.pub = node.create_publisher(Float64MultiArray, prefix + io.JOINT_COMMANDS, io.COMMAND_QOS)
        self.reset_client = node.create_client(Trigger, prefix + io.RESET)
        self.teleport_client = node.create_client(Trigger, prefix + TELEPORT_RESET)
        self.namespace = namespace

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"sac_robot/pybullet_stand_in{'/' + self.namespace if self.namespace else ''}":
                self.diags.append({kv.key: kv.value for kv in status.values})

    def spin_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.proc.poll() is not None:
                pytest.fail(f"stand-in exited ({self.proc.returncode}) while waiting for {what}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; stand-in log:\n{self.log_text()}")
            self.executor.spin_once(timeout_sec=0.02)

    def spin_for(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        end = time.monotonic() + seconds
        self.spin_until(lambda: until() or time.monotonic() >= end, seconds + 5.0, "time to pass")

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def call(self, client, timeout: float = 10.0) -> Trigger.Response:
        self.spin_until(client.service_is_ready, STARTUP_S, f"service {client.srv_name}")
        future = client.call_async(Trigger.Request())
        self.spin_until(future.done, timeout, f"the answer of {client.srv_name}")
        return future.result()

    def wait_connected(self) -> None:
        self.spin_until(
            lambda: self.pub.get_subscription_count() > 0 and self.reset_client.service_is_ready(),
            STARTUP_S,
            "the stand-in's command subscription and reset service",
        )

    def sync_lockstep(self) -> float:
        """Reset until the state it publishes arrives (our readers may match after the first one): its stamp."""
        self.wait_connected()
        for _ in range(5):
            count = len(self.msgs["priv"])
            assert self.call(self.reset_client).success
            self.spin_for(2.0, until=lambda n=count: len(self.msgs["priv"]) > n)
            if len(self.msgs["priv"]) > count:
                self.spin_until(lambda: self.newest_stamp("priv") == self.newest_stamp("joints"), 5.0, "reset state")
                return self.newest_stamp("joints")
        pytest.fail(f"no state after 5 resets:\n{self.log_text()}")

    def newest_stamp(self, key: str) -> float:
        return io.from_time(self.msgs[key][-1].header.stamp) if self.msgs[key] else -1.0

    def step(self, command: np.ndarray) -> dict[str, object]:
        """Lockstep: one command, one control step; every topic's message of the new step."""
        before = self.newest_stamp("priv")
        self.pub.publish(Float64MultiArray(data=[float(c) for c in command]))
        self.spin_until(lambda: self.newest_stamp("priv") > before, 10.0, "the state after a command")
        stamp = self.newest_stamp("priv")
        self.spin_until(lambda: all(self.newest_stamp(k) == stamp for k in self.msgs), 5.0, "a complete step")
        return {k: v[-1] for k, v in self.msgs.items()}

    def command(self, command: np.ndarray) -> None:
        self.pub.publish(Float64MultiArray(data=[float(c) for c in command]))

    def diag_after(self, predicate: Callable[[dict[str, str]], bool], timeout: float, what: str) -> dict[str, str]:
        start = len(self.diags)
        self.spin_until(lambda: any(predicate(d) for d in self.diags[start:]), timeout, what)
        return next(d for d in self.diags[start:] if predicate(d))


@pytest.fixture
def make_driver(rclpy_context, proc_reaper, ros_env, tmp_path):

    node = rclpy.create_node("test_pybullet_stand_in", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)

    def make(namespace: str = "", lockstep: bool = True, **params: object) -> Driver:
        log = tmp_path / f"stand_in_{namespace or 'root'}.log"
        proc = start_stand_in(proc_reaper, ros_env, log, namespace, lockstep=lockstep, **params)
        return Driver(node, executor, namespace, lockstep, proc, log)

    yield make
    executor.shutdown()
    node.destroy_node()


def _state(step: dict[str, object]) -> RobotState:
    js, imu, odom = step["joints"], step["imu"], step["odom"]
    q, gyro, accel = io.read_imu(imu)
    position, velocity = io.read_odom(odom)
    return RobotState(
        joint_position=np.array(js.position),
        joint_velocity=np.array(js.velocity),
        joint_effort=np.array(js.effort),
        imu_orientation=q,
        imu_angular_velocity=gyro,
        imu_linear_acceleration=accel,
        base_linear_velocity=velocity,
        base_position=position,
    )


def test_stands_at_home_truncates_and_resets_after_wild_commands(make_driver, tmp_path) -> None:
    data = yaml.safe_load((REPO / "config" / "quadruped.yaml").read_text(encoding="utf-8"))
    data["robot"]["episode_seconds"] = 1.0  # truncation after 20 steps, within the second we hold home
    config = tmp_path / "quadruped_1s.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    rc = parse_robot_config(data["robot"])
    drv = make_driver(config=str(config), seed=3)
    t0 = drv.sync_lockstep()

    steps = [drv.step(HOME) for _ in range(20)]  # hold home for 1 s of simulated time
    stamps = [io.from_time(s["joints"].header.stamp) for s in steps]
    np.testing.assert_allclose(np.diff([t0, *stamps]), CONTROL_DT, atol=1e-9)
    last = steps[-1]
    js = last["joints"]
    assert list(js.name) == QUADRUPED.joint_names
    np.testing.assert_allclose(js.position, HOME, atol=0.1)
    assert np.abs(js.velocity).max() < 0.1
    _, gyro, accel = io.read_imu(last["imu"])
    assert accel[2] == pytest.approx(9.81, abs=0.5)
    assert np.abs(gyro).max() < 0.05
    _, base_velocity = io.read_odom(last["odom"])
    assert np.abs(base_velocity).max() < 0.05
    feet = last["feet"]
    assert list(feet.name) == QUADRUPED.feet and list(feet.position) == [1.0] * 4
    assert min(feet.effort) > 0.0  # normal forces carry the robot
    # privileged/step: LeggedEnv's reward on the published state, never fallen, truncated at episode_seconds
    priv = [s["priv"].vector for s in steps]
    assert [p.y for p in priv] == [0.0] * 20
    assert [p.z for p in priv] == [0.0] * 19 + [1.0]
    zeros = np.zeros(len(HOME))
    for s, p in zip(steps, priv, strict=True):
        expected, _ = compute_reward(rc.reward, QUADRUPED, _state(s), zeros, zeros, fell=False)
        assert p.x == pytest.approx(expected, abs=1e-9)

    rng = np.random.default_rng(0)
    wild = [drv.step(rng.uniform(LOWER, UPPER)) for _ in range(20)]
    assert max(np.abs(np.array(s["joints"].position) - HOME).max() for s in wild) > 0.3
    response = drv.call(drv.reset_client)
    assert response.success, response.message
    stamp = io.from_time(wild[-1]["joints"].header.stamp) + CONTROL_DT
    drv.spin_until(lambda: drv.newest_stamp("priv") >= stamp - 1e-9, 5.0, "the state after the reset")
    js, odom, priv = drv.msgs["joints"][-1], drv.msgs["odom"][-1], drv.msgs["priv"][-1]
    np.testing.assert_allclose(js.position, HOME, atol=1e-9)
    np.testing.assert_allclose(js.velocity, 0.0, atol=1e-9)
    o = odom.pose.pose.orientation
    assert abs(o.x) < 1e-6 and abs(o.y) < 1e-6
    assert (priv.vector.y, priv.vector.z) == (0.0, 0.0)

    # Malformed commands are refused (no step) and counted in the diagnostics.
    before = drv.newest_stamp("joints")
    drv.command(np.ones(3))
    drv.command(np.full(len(HOME), np.nan))
    diag = drv.diag_after(lambda d: d["rejected"] == "2", 5.0, "rejected commands in /diagnostics")
    assert drv.newest_stamp("joints") == before
    assert diag["commands_received"] == "40" and diag["deadman_active"] == "false"
    assert float(diag["sim_time"]) == pytest.approx(before, abs=1e-6)


def test_lockstep_is_deterministic(make_driver) -> None:
    runs = [make_driver(namespace=name, seed=7) for name in ("run_a", "run_b")]  # start both, then drive both
    trajectories = []
    for drv in runs:
        drv.sync_lockstep()
        rng = np.random.default_rng(42)
        commands = [HOME + rng.uniform(-0.5, 0.5, len(HOME)) for _ in range(25)]
        steps = [drv.step(c) for c in commands]
        trajectories.append(
            [np.array([*s["joints"].position, *s["joints"].velocity, *s["joints"].effort]) for s in steps]
        )
    a, b = (np.stack(t) for t in trajectories)
    assert np.abs(a[-1, : len(HOME)] - HOME).max() > 0.05  # the commands did move the robot
    np.testing.assert_array_equal(a, b)


def test_deadman_trips_in_real_time_and_releases_on_commands(make_driver) -> None:
    drv = make_driver(lockstep=False, config="quadruped", deadman_timeout_s=0.3)
    drv.wait_connected()
    drv.spin_until(lambda: len(drv.msgs["joints"]) > 0, STARTUP_S, "real-time joint_states")

    def command_for(seconds: float) -> None:  # home at the control rate, as a collector would
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            drv.command(HOME)
            drv.spin_for(CONTROL_DT)

    n0, d0 = len(drv.msgs["joints"]), len(drv.diags)
    command_for(2.2)  # long enough for a 1 Hz diagnostics message while commanded
    assert len(drv.msgs["joints"]) - n0 >= 10  # published at the control rate without any lockstep
    during = [d for d in drv.diags[d0:] if int(d["commands_received"]) > 0]
    assert during, "no diagnostics while commanding"
    assert all(d["deadman_active"] == "false" and d["mode"] == "real time" for d in during)
    diag = drv.diag_after(lambda d: d["deadman_active"] == "true", 5.0, "deadman_active after commands stop")
    assert diag["deadman_trips"] == "1"
    d0, end = len(drv.diags), time.monotonic() + 4.0  # commands resume: keep sending until diagnostics say so
    while not any(d["deadman_active"] == "false" for d in drv.diags[d0:]):
        assert time.monotonic() < end, f"the deadman was not released by new commands:\n{drv.log_text()}"
        command_for(CONTROL_DT)
    assert "commands resumed: deadman released" in drv.log_text()


def test_emulated_hardware_refuses_to_teleport_and_can_be_righted(make_driver) -> None:
    drv = make_driver(lockstep=False, config="quadruped", emulate_hardware=True, initial_pose="side", seed=1)
    drv.spin_until(lambda: len(drv.msgs["imu"]) > 0, STARTUP_S, "real-time imu/data")
    _, _, accel = io.read_imu(drv.msgs["imu"][-1])
    assert abs(accel[1]) == pytest.approx(9.81, abs=1.5)  # lying on its side: gravity along body y
    response = drv.call(drv.reset_client)
    assert not response.success
    assert response.message == NO_TELEPORT
    response = drv.call(drv.teleport_client)
    assert response.success, response.message
    count = len(drv.msgs["imu"])
    drv.spin_until(lambda: len(drv.msgs["imu"]) > count + 3, 5.0, "imu/data after the teleport")
    _, _, accel = io.read_imu(drv.msgs["imu"][-1])
    assert accel[2] == pytest.approx(9.81, abs=1.0)  # upright again
    diag = drv.diag_after(lambda d: d["teleports_refused"] == "1", 4.0, "the refusal in /diagnostics")
    assert diag["mode"] == "emulated hardware" and diag["resets"] == "1"
