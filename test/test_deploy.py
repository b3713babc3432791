# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Deploying a frozen policy: the compatibility check refuses what differs (and says what), and the policy
node drives the PyBullet stand-in in real time within the joint limits, holds on an e-stop from the next
control step on, stays held when the e-stop is released, and moves again only after sac_robot/resume.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sac_robot.core.config import load_config
from sac_robot.policy_runtime import FrozenPolicy
from sac_robot.robot.deploy_check import (
    LatencyWindow,
    PolicyMismatchError,
    check_compatibility,
    pipeline_policy_info,
    require_compatible,
)
from sac_robot.robot.pipeline import build_pipeline

REPO = Path(__file__).resolve().parents[1]
PIPE = build_pipeline(load_config("quadruped").robot)
STARTUP_S = 60.0  # a loaded 2-core machine may take a while to import rclpy and pybullet


def policy_meta(**changes) -> dict:
    return {"obs_dim": PIPE.obs_dim, "act_dim": PIPE.act_dim, **pipeline_policy_info(PIPE), **changes}


def export_fresh_policy(path: Path, **changes) -> Path:
    """A policy from a freshly initialised SAC agent for the quadruped pipeline (``changes`` alter its metadata)."""
    from sac_robot.core.export import export_policy
    from sac_robot.core.sac import SAC

    cfg = load_config("quadruped", {"sac.device": "cpu"})
    ones = np.ones(PIPE.act_dim)
    agent = SAC(PIPE.obs_dim, PIPE.act_dim, -ones, ones, cfg.sac, seed=0)
    info = {**pipeline_policy_info(PIPE), **changes}
    return export_policy(agent, path, env_id=cfg.env.id, config=cfg.model_dump(mode="json"), **info)


# --- the compatibility check (no ROS) ------------------------------------------------------------------


def test_matching_policy_passes() -> None:
    assert check_compatibility(policy_meta(), PIPE) == []


def test_joint_order_refused_naming_joints() -> None:
    names = list(PIPE.description.joint_names)
    names[0], names[3] = names[3], names[0]
    (diff,) = check_compatibility(policy_meta(joint_names=names), PIPE)
    assert "different order" in diff and "index 0" in diff
    assert "'FR_hip_joint'" in diff and "'FL_hip_joint'" in diff


def test_joint_names_refused_naming_joints() -> None:
    names = list(PIPE.description.joint_names)
    names[2] = "FL_knee_joint"
    (diff,) = check_compatibility(policy_meta(joint_names=names), PIPE)
    assert "['FL_calf_joint']" in diff and "['FL_knee_joint']" in diff


def test_obs_layout_refused_naming_terms() -> None:
    layout = [list(t) for t in pipeline_policy_info(PIPE)["obs_layout"]]
    # gravity and angular_velocity swapped: same sizes, so only the layout differs
    (g,) = [i for i, t in enumerate(layout) if t[0] == "gravity"]
    (w,) = [i for i, t in enumerate(layout) if t[0] == "angular_velocity"]
    layout[g][0], layout[w][0] = "angular_velocity", "gravity"
    (diff,) = check_compatibility(policy_meta(obs_layout=layout), PIPE)
    assert diff.startswith("obs_layout:") and "gravity" in diff and "angular_velocity" in diff

    shorter = [t for t in pipeline_policy_info(PIPE)["obs_layout"] if t[0] != "previous_action"]
    diffs = check_compatibility(policy_meta(obs_layout=shorter, obs_dim=PIPE.obs_dim - 12), PIPE)
    assert f"obs_dim: policy {PIPE.obs_dim - 12}, robot observation {PIPE.obs_dim}" in diffs
    assert any(d.startswith("obs_layout:") and "previous_action" in d for d in diffs)


def test_control_rate_refused_naming_rates() -> None:
    (diff,) = check_compatibility(policy_meta(control_rate_hz=50.0), PIPE)
    assert diff == "control_rate_hz: policy trained at 50 Hz, robot runs at 20 Hz"
    (diff,) = check_compatibility(policy_meta(), PIPE, control_rate_hz=40.0)  # the node's override
    assert "robot runs at 40 Hz" in diff


def test_policy_without_robot_metadata_refused(tmp_path: Path) -> None:
    meta = {"obs_dim": 3, "act_dim": 1, "env_id": "Pendulum-v1"}
    diffs = check_compatibility(meta, PIPE)
    assert any("joint_names: missing" in d and "Pendulum-v1" in d for d in diffs)
    assert any(d.startswith("act_dim: policy 1, robot joints 12") for d in diffs)
    policy = FrozenPolicy.load(export_fresh_policy(tmp_path / "p.safetensors", action_scale=0.5))
    with pytest.raises(PolicyMismatchError, match="action_scale: policy 0.5 rad, robot 0.35 rad"):
        require_compatible(policy, PIPE, source="p.safetensors")


def test_latency_window() -> None:
    w = LatencyWindow(100)
    for i in range(1, 201):
        w.add(i * 1e-3)
    s = w.stats_ms()
    assert s["n"] == 100 and s["max"] == pytest.approx(200.0) and s["p50"] == pytest.approx(150.5)


def test_policy_node_imports_no_torch() -> None:
    import rclpy  # noqa: F401  (must be importable: node tests never skip)

    code = "import sys, sac_robot.nodes.policy_node; print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- the node ------------------------------------------------------------------------------------------


def start(proc_reaper, ros_env, log: Path, module: str, **params: object) -> subprocess.Popen:
    cmd = [sys.executable, "-m", module, "--ros-args"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
    with open(log, "w", encoding="utf-8") as out:
        return proc_reaper.spawn(cmd, env=ros_env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_policy_node_refuses_mismatched_policy(tmp_path: Path, proc_reaper, ros_env) -> None:
    import rclpy  # noqa: F401  (must be importable: node tests never skip)

    policy = export_fresh_policy(tmp_path / "p.safetensors", control_rate_hz=50.0)
    log = tmp_path / "policy.log"
    proc = start(proc_reaper, ros_env, log, "sac_robot.nodes.policy_node", policy=policy, config="quadruped")
    assert proc.wait(timeout=90) == 2
    text = log.read_text(encoding="utf-8")
    assert "refusing to start" in text and "control_rate_hz: policy trained at 50 Hz, robot runs at 20 Hz" in text


@pytest.mark.ros
@pytest.mark.timeout(240)
def test_policy_node_drives_stand_in_with_estop(tmp_path: Path, proc_reaper, ros_env, rclpy_context) -> None:
    import pybullet  # noqa: F401  (an install requirement: these tests never skip)
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Bool, Float64MultiArray
    from std_srvs.srv import Trigger

    from sac_robot.nodes import ros_io as io

    policy = export_fresh_policy(tmp_path / "policy.safetensors")
    stand_log, node_log = tmp_path / "stand_in.log", tmp_path / "policy.log"
    stand_in = start(
        proc_reaper, ros_env, stand_log, "sac_robot.nodes.pybullet_stand_in", config="quadruped", lockstep=False
    )
    node_proc = start(proc_reaper, ros_env, node_log, "sac_robot.nodes.policy_node", policy=policy, config="quadruped")

    import rclpy

    node = rclpy.create_node("deploy_test", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    names = PIPE.description.joint_names
    order = io.JointOrder(names)
    positions: list[np.ndarray] = []
    commands: list[np.ndarray] = []
    diags: list[dict[str, str]] = []
    node.create_subscription(
        io.JointState, io.JOINT_STATES, lambda m: positions.append(order.read(m)[0]), io.SENSOR_QOS
    )
    node.create_subscription(
        Float64MultiArray, io.JOINT_COMMANDS, lambda m: commands.append(np.array(m.data)), io.COMMAND_QOS
    )

    def on_diag(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name == "sac_robot/policy_node":
                diags.append({kv.key: kv.value for kv in s.values})

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    estop = node.create_publisher(Bool, io.GLOBAL_ESTOP, 10)  # as `ros2 topic pub` does: reliable, volatile
    resume = node.create_client(Trigger, io.RESUME)

    def logs() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in (stand_log, node_log))

    def spin_until(done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            for proc in (stand_in, node_proc):
                if proc.poll() is not None:
                    pytest.fail(f"a node exited ({proc.returncode}) while waiting for {what}:\n{logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{logs()}")
            executor.spin_once(timeout_sec=0.02)

    def spin_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        spin_until(lambda: time.monotonic() >= end, seconds + 10.0, "time to pass")

    try:
        spin_until(lambda: len(commands) >= 5, STARTUP_S, "the policy node's first commands")
        spin_until(lambda: bool(diags) and diags[-1].get("estop_known") == "true", 30.0, "the e-stop's grace to end")
        spin_for(3.0)  # the policy drives the robot for a few seconds of real time
        driving = len(commands)
        assert driving >= 20, f"only {driving} commands in ~3 s at 20 Hz:\n{logs()}"
        moving = np.stack(commands[-20:])
        assert np.ptp(moving, axis=0).max() > 0, "a policy on a moving robot should not send one constant command"
        spin_until(lambda: len(diags) > 0 and diags[-1].get("latency_samples", "0") != "0", 10.0, "diagnostics")
        d = diags[-1]
        assert float(d["latency_ms_p50"]) > 0 and float(d["latency_ms_p99"]) >= float(d["latency_ms_p50"])
        assert d["estop"] == "clear"

        # E-stop: from the control step after the node receives it, the hold command (constant).
        n0 = len(commands)
        estop.publish(Bool(data=True))
        spin_for(1.5)
        tail = _constant_tail_start(commands)
        assert tail <= n0 + 2, f"commands kept changing {tail - n0} steps after the e-stop"
        print(
            f"latency p50 {d['latency_ms_p50']} ms, p99 {d['latency_ms_p99']} ms; "
            f"{tail - n0 + 1} policy command(s) arrived after the e-stop was published"
        )
        hold = commands[-1]  # = the last target sent before the e-stop took effect: no jump, then unchanged
        assert len(commands) - n0 >= 10

        # Releasing alone does not restart motion.
        estop.publish(Bool(data=False))
        n1 = len(commands)
        spin_for(1.0)
        assert len(commands) - n1 >= 8
        for c in commands[n1:]:
            np.testing.assert_array_equal(c, hold)
        spin_until(lambda: diags[-1]["estop"].startswith("latched"), 5.0, "diagnostics to show the latch")

        # The resume service does (retried: on a loaded machine a sensor may be momentarily older than the timeout).
        spin_until(resume.service_is_ready, 10.0, "the resume service")
        for _ in range(10):
            future = resume.call_async(Trigger.Request())
            spin_until(future.done, 10.0, "the resume answer")
            if future.result().success:
                break
            spin_for(0.2)
        assert future.result().success, future.result().message
        n2 = len(commands)
        spin_for(1.5)
        after = commands[n2:]
        assert len(after) >= 10
        assert any(not np.array_equal(c, hold) for c in after), "resume did not restart motion"

        # All the while, the measured joint positions stayed within the description's limits.
        q = np.stack(positions)
        assert len(q) >= 60
        lower, upper = PIPE.description.array("lower"), PIPE.description.array("upper")
        assert np.all(q >= lower) and np.all(q <= upper), "a joint left its limits"
        lo, hi = lower + PIPE.cfg.safety.position_margin, upper - PIPE.cfg.safety.position_margin
        c = np.stack(commands)
        assert np.all(c >= lo - 1e-9) and np.all(c <= hi + 1e-9)
    finally:
        executor.shutdown()
        node.destroy_node()
    assert proc_reaper.stop(node_proc) == 0, logs()  # Ctrl-C: a clean exit
    proc_reaper.stop(stand_in)


def _constant_tail_start(commands: list[np.ndarray]) -> int:
    """Index of the first command from which every command equals the last one."""
    i = len(commands) - 1
    while i > 0 and np.array_equal(commands[i - 1], commands[-1]):
        i -= 1
    return i


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_policy_written_by_sac_robot_train_deploys_as_it_is(tmp_path: Path) -> None:
    """`sac-robot train --config quadruped_hw` writes run_dir/policy.safetensors; the deploy check takes it
    as `sac-robot export` output is taken (joint names, layout, control rate, action mapping)."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "sac_robot.cli.main", "train", "--config", "quadruped_hw", "--steps", "60"]
    out = subprocess.run(
        [*cmd, "--run-dir", str(run_dir), "--quiet", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=REPO,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    policy = FrozenPolicy.load(run_dir / "policy.safetensors")
    pipe = build_pipeline(load_config("quadruped_hw").robot)
    require_compatible(policy, pipe, float(pipe.cfg.control_rate_hz), str(run_dir / "policy.safetensors"))
    assert policy.meta["joint_names"] == list(pipe.description.joint_names)
