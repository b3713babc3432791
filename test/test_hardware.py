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
import time
from pathlib import Path
from typing import Any

import numpy as np
import pybullet  # noqa: F401  (an install requirement: these tests never skip)
import pytest
import yaml
from std_msgs.msg import UInt8MultiArray

from sac_robot.nodes.pybullet_stand_in import EMULATED_STD, TELEPORT_RESET

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(150)]

from hw_rig import (
    EFFORT,
    HOME,
    LOWER,
    MARGIN,
    PERIOD_S,
    QUAD,
    RATE_HZ,
    REPO,
    STARTUP_S,
    UPPER,
    VELOCITY,
    WATCHDOG_TIMEOUT_S,
    held,
    hw50_config,
    hw_config,
    scaled_policy_bytes,
    start_collector,
    start_stand_in,
)

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
