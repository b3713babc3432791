# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Fault injection against the running collector: every fault ends in a counted, logged rejection or a safe
mode, never in a crash of the control loop or a command outside the limits.

* malformed sensor messages (wrong array lengths, unknown or missing joint names, a non-unit quaternion),
  out-of-order stamps, truncated and misshapen weights messages
* a flooded joint-state topic; a delayed IMU topic (within the sensor timeout: training goes on; beyond it:
  safe mode, and motion again when the delay goes)
* the simulator (Box2D stand-in) killed and restarted mid-run: the collector notices the stall, waits for the
  reset service, and training continues on the restarted simulator
* the learner gone: the collector says so, and with on_learner_gone: safe_mode holds the robot

Synthetic-sensor rigs come from hw_rig.py (same 50 Hz quadruped_hw collector, armed with `sac-robot
arm`). Each test runs on its own ROS domain, limited to localhost, and stops every process it starts. The
learner's faults (killed and restarted, disk full) are in test_crash_recovery.py and test_faults_units.py.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hw_rig import (
    HOME,
    LOWER,
    MARGIN,
    QUAD,
    RATE_HZ,
    STARTUP_S,
    held,
    hw50_config,
    hw_config,
    node_cmd,
    scaled_policy_bytes,
    start_collector,
)
from std_msgs.msg import UInt8MultiArray

from sac_robot.nodes import ros_io as io

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(180)]

UPPER = QUAD.array("upper")
SENT = 5  # copies of each bad message: best-effort sensor QoS may drop one now and then


def within_limits(commands: np.ndarray) -> bool:
    finite = np.all(np.isfinite(commands))
    return bool(finite and np.all(commands >= LOWER + MARGIN - 1e-9))


def _joint_state(names: list[str], n_values: int, stamp: float) -> io.JointState:
    msg = io.JointState()
    msg.header.stamp = io.to_time(stamp)
    msg.name = list(names)
    values = (list(HOME) * 2)[:n_values]
    msg.position, msg.velocity, msg.effort = values, [0.0] * n_values, [0.0] * n_values
    return msg


def test_malformed_out_of_order_and_misshapen_inputs_are_counted_and_never_reach_commands(
    rig: Any, tmp_path: Path
) -> None:
    from sac_robot.core.config import load_config
    from sac_robot.robot.pipeline import build_pipeline

    procs = rig.procs
    config = hw50_config(tmp_path)
    pipe = build_pipeline(load_config(config).robot)
    start_collector(procs, config)
    obs = rig.observer("collector")
    rig.sensors(obs)
    procs.arm()
    obs.wait_training()
    before = obs.diag()
    start = time.time_ns()
    rogue_js = obs.node.create_publisher(io.JointState, io.JOINT_STATES, io.SENSOR_QOS)
    rogue_imu = obs.node.create_publisher(io.Imu, io.IMU, io.SENSOR_QOS)
    names, n = QUAD.joint_names, len(QUAD.joint_names)
    malformed = {
        "wrong length": lambda t: _joint_state(names, n - 1, t),
        "unknown joint": lambda t: _joint_state(["bogus_joint", *names[1:]], n, t),
        "missing joint": lambda t: _joint_state(names[:-1], n - 1, t),
    }
    for make in malformed.values():
        for _ in range(SENT):
            rogue_js.publish(make(time.time()))
            obs.spin_for(0.02)
    for _ in range(SENT):  # a quaternion of norm 5: not an orientation
        rogue_imu.publish(
            io.imu_msg(np.array([0.0, 0.0, 0.0, 5.0]), np.zeros(3), np.array([0, 0, 9.81]), time.time(), "imu")
        )
        obs.spin_for(0.02)
    for _ in range(SENT):  # well-formed but older than what the 250 Hz stream delivered last
        rogue_js.publish(_joint_state(names, n, time.time() - 0.5))
        obs.spin_for(0.02)
    truncated = scaled_policy_bytes(pipe, 1.0, "bad-run", 1)[:-100]
    obs.policy_pub.publish(UInt8MultiArray(data=truncated))
    obs.spin_for(0.2)
    from sac_robot.core.atomic_io import encode_tensors
    from sac_robot.policy_runtime import read_safetensors

    tensors, raw = read_safetensors(scaled_policy_bytes(pipe, 1.0, "bad-run", 2))
    tensors["head.weight"] = np.zeros((3, 3), np.float32)  # the right name, the wrong shape
    misshapen = encode_tensors(tensors, json.loads(raw["meta"]))
    obs.policy_pub.publish(UInt8MultiArray(data=misshapen))

    bad_sent = 4 * SENT + 2
    diag = obs.wait_diag(
        lambda d: (
            int(d["bad_messages"]) - int(before["bad_messages"]) >= 0.8 * bad_sent
            and int(d["out_of_order"]) - int(before["out_of_order"]) >= 0.6 * SENT
        ),
        20.0,
        "the rejections counted",
    )
    obs.spin_for(0.5)
    commands = np.array(obs.commands_since(start))
    procs.check_alive("collector")
    assert len(commands) > RATE_HZ, "the control loop stopped during the faults"
    assert within_limits(commands)
    assert diag["policy_version"] == "0", "a damaged policy was taken"
    assert int(obs.diag()["steps"]) > int(before["steps"])
    log = (tmp_path / "collector.log").read_text(encoding="utf-8")
    # (one line per second per kind of warning: the rejections are counted, the log is throttled)
    for text in ("message rejected", "older than the last one", "policy rejected"):
        assert text in log, f"no log line saying {text!r}"
    print(
        f"faults: bad_messages +{int(diag['bad_messages']) - int(before['bad_messages'])} of {bad_sent}, "
        f"out_of_order +{int(diag['out_of_order']) - int(before['out_of_order'])} of {SENT}"
    )


def test_flooded_and_delayed_sensor_topics_keep_the_loop_safe(rig: Any, tmp_path: Path) -> None:
    procs = rig.procs
    start_collector(procs, hw50_config(tmp_path))  # sensor_timeout_s 0.1 (quadruped_hw)
    obs = rig.observer("collector")
    sensors = rig.sensors(obs)
    procs.arm()
    obs.wait_training()

    # Flood: joint states as fast as one thread can publish them, for 3 s.
    flood_pub = obs.node.create_publisher(io.JointState, io.JOINT_STATES, io.SENSOR_QOS)
    stop, flooded = threading.Event(), [0]

    def flood() -> None:
        while not stop.is_set():
            flood_pub.publish(_joint_state(QUAD.joint_names, len(HOME), time.time()))
            flooded[0] += 1

    steps0, start = int(obs.diag()["steps"]), time.time_ns()
    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    obs.spin_for(3.0)
    stop.set()
    thread.join(5.0)
    diag = obs.wait_diag(lambda d: True, 5.0, "diagnostics after the flood")
    flood_steps = int(diag["steps"]) - steps0
    commands = np.array(obs.commands_since(start))
    procs.check_alive("collector")
    assert flooded[0] > 1000, "the flood was too thin to test anything"
    assert flood_steps >= 0.5 * 3.0 * RATE_HZ, f"only {flood_steps} control steps in 3 s of flood"
    assert within_limits(commands)
    assert "missed_deadlines" in diag

    # Delay within the timeout: training goes on. Beyond it: safe mode (held pose), then motion again.
    sensors.stamp_offset["imu"] = -0.03
    obs.spin_for(0.5)
    recent = [c for _, c in obs.commands[-10:]]
    assert not all(held(recent)[1:]), "a 30 ms delay (timeout 100 ms) stopped the robot"
    stale0 = int(obs.diag().get("count.stale_imu", 0))
    sensors.stamp_offset["imu"] = -0.3
    obs.spin_for(0.6)
    assert all(held([c for _, c in obs.commands[-10:]])[1:]), "IMU data 300 ms old did not give safe mode"
    obs.wait_diag(lambda d: int(d.get("count.stale_imu", 0)) > stale0, 5.0, "the stale IMU counted")
    sensors.stamp_offset["imu"] = 0.0
    obs.spin_until(lambda: not all(held([c for _, c in obs.commands[-6:]])[1:]), 10.0, "motion after the delay")
    procs.check_alive("collector")
    print(f"flood: {flooded[0]} messages in 3 s, {flood_steps} control steps, missed {diag['missed_deadlines']}")


def _walker_config(tmp_path: Path) -> Path:
    """BipedalWalker through ROS with random actions and no learner (the simulator is what fails here)."""
    from test_ros_e2e import ROBOT

    cfg = {
        "env": {"id": "BipedalWalker-v3"},
        "sac": {"hidden_sizes": [16], "learning_starts": 10**9, "device": "cpu"},
        "robot": {**ROBOT, "wait_for_learner": False, "eval_episodes": 0},
    }
    path = tmp_path / "walker.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_stand_in_killed_and_restarted_training_continues(rig: Any, tmp_path: Path) -> None:
    procs = rig.procs
    config = _walker_config(tmp_path)
    stand_in_cmd = node_cmd("box2d_stand_in", {"lockstep": True, "seed": 0})
    procs.start("stand_in", stand_in_cmd)
    procs.start(
        "collector",
        node_cmd("collector_node", {"config": config, "collector_id": "walker", "use_sim_time": True, "seed": 0}),
    )
    obs = rig.observer("collector")
    name = "sac_robot/collector/walker"
    obs.wait_diag(lambda d: int(d["steps"]) > 200, STARTUP_S, "lockstep steps before the kill", name)

    procs.procs["stand_in"].send_signal(signal.SIGKILL)
    procs.procs["stand_in"].wait(10)
    down = obs.wait_diag(
        # DDS may still list the dead server's reset service for a while: the collector calls it, the call times
        # out (service_timeout_s) and it tries again; with the service gone it waits for it to come back.
        lambda d: int(d["stalls"]) >= 1 and d["reset_phase"] == "CALL_SERVICE",
        20.0,
        "the collector to notice the dead simulator",
        name,
    )
    procs.check_alive("collector")
    procs.start("stand_in_2", stand_in_cmd)
    after = obs.wait_diag(
        lambda d: int(d["steps"]) > int(down["steps"]) + 200, STARTUP_S, "lockstep steps on the new simulator", name
    )
    procs.check_alive("collector", "stand_in_2")
    assert int(after["time_jumps"]) >= 1, "the simulator's clock restart went unnoticed"
    log = (tmp_path / "collector.log").read_text(encoding="utf-8")
    assert "time jumped back" in log
    print(
        f"stand-in restart: stalled at {down['steps']} steps, {after['steps']} after; status '{down['reset_status']}'"
    )


def test_learner_gone_is_said_and_the_safe_mode_config_holds_the_robot(rig: Any, tmp_path: Path) -> None:
    """No learner ever answers: after policy_timeout_s the collector says so, and with on_learner_gone:
    safe_mode it holds the safety layer's safe mode (the hold pose) and collects nothing."""
    procs = rig.procs
    config = hw_config(
        tmp_path,
        "gone",
        control_rate_hz=RATE_HZ,
        episode_seconds=600,
        on_learner_gone="safe_mode",
        policy_timeout_s=1.0,
    )
    start_collector(procs, config)
    obs = rig.observer("collector")
    rig.sensors(obs)
    procs.arm()
    obs.wait_training()
    diag = obs.wait_diag(
        lambda d: "no acknowledgement" in d["learner"], 15.0, "the collector to say the learner is gone"
    )
    assert "safe mode until it is back" in diag["learner"], diag["learner"]
    obs.spin_for(1.0)
    recent = [c for _, c in obs.commands[-20:]]
    assert len(recent) == 20 and all(held(recent)[1:]), f"commands moved while the learner was gone: {obs.diag()}"
    transitions = int(obs.diag()["transitions"])
    diag = obs.wait_diag(lambda d: int(d.get("count.learner_gone", 0)) > RATE_HZ, 10.0, "safe-mode steps counted")
    assert int(diag["transitions"]) == transitions, "transitions were collected in safe mode"
    procs.check_alive("collector")
