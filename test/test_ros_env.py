# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""RosRobotEnv: a gymnasium Env over the Box2D stand-in's ROS topics.

It passes gymnasium's checker, seeded resets are reproducible, and an episode reproduces the
in-process BipedalWalker-v3 benchmark step for step (same seed, same actions, privileged reward).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import rclpy  # noqa: F401  (node tests run, never skip: rclpy comes with the ros extra)
import yaml

from sac_robot.nodes.ros_env import ENV_ID, RosRobotEnv, register_ros_env
from sac_robot.robot import box2d_walker as walker
from sac_robot.robot.description import load_robot, package_share
from sac_robot.robot.safety import SafetyConfig, SafetyLayer

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROBOT = yaml.safe_load(
    """
description: bipedal_walker
observation: bipedal_walker
action: {mode: effort}
reward: privileged
termination: privileged
safety:
  command_mode: effort
  safe_mode: zero_effort
  position_margin: 0.0
  max_effort_fraction: 1.0
  max_velocity_fraction: 1.0
  sensor_timeout_s: 0.5
  max_roll: 3.14
  max_pitch: 1.57
reset: {mode: sim_service}
control_rate_hz: 50
lockstep: true
episode_seconds: 4
send_batch: 32
publish_every_updates: 100
eval_every_steps: 1000
eval_episodes: 1
"""
)


@pytest.fixture
def ros_domain_id(ros_domain_id: int) -> int:
    """This test's domain from conftest, except 100, which is left to manual runs and benchmarks on the machine.

    conftest never hands the session's own domain to a test, so it is free to stand in for 100.
    """
    return ros_domain_id if ros_domain_id != 100 else int(os.environ["ROS_DOMAIN_ID"])


def widened_walker_description(tmp_path: Path) -> Path:
    """The packaged walker description with the knees' upper limit raised from 0.3 to 1.2 rad.

    Box2D creates the legs straight (knee angle 0, outside its own knee range -1.6..-0.1), so for the first
    steps after every reset the knees sit at up to +0.8 rad; with the packaged upper limit of 0.3 rad the safety
    layer then zeroes the knee efforts and the ROS path leaves the benchmark's dynamics (see
    test_packaged_walker_limits_never_alter_the_benchmark).
    """
    data = yaml.safe_load((package_share() / "config" / "robots" / "bipedal_walker.yaml").read_text())
    for joint in data["joints"]:
        if joint["name"].startswith("knee"):
            joint["upper"] = max(joint["upper"], 1.2)
    path = tmp_path / "bipedal_walker_widened.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def quick_config(tmp_path: Path) -> Path:
    cfg = {
        "env": {"id": "BipedalWalker-v3"},
        "sac": {
            "hidden_sizes": [64, 64],
            "learning_starts": 500,
            "batch_size": 64,
            "device": "cpu",
            "torch_threads": 1,
        },
        "replay": {"capacity": 100_000},
        "train": {"total_steps": 3000},
        "robot": {**ROBOT, "description": str(widened_walker_description(tmp_path))},
    }
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def stand_in(ros_env: dict[str, str], proc_reaper, tmp_path: Path) -> subprocess.Popen:
    """A freshly started Box2D stand-in (lockstep) on this test's domain, stopped by the test's teardown."""
    log = open(tmp_path / "stand_in.log", "w")  # noqa: SIM115 (closed with the process)
    cmd = [
        sys.executable,
        "-m",
        "sac_robot.nodes.box2d_stand_in",
        "--ros-args",
        "-r",
        "__node:=stand_in",
        "-p",
        "lockstep:=true",
    ]
    proc = proc_reaper.spawn(cmd, env=ros_env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def _make_env(config: Path, domain_id: int, stand_in: subprocess.Popen, tmp_path: Path) -> RosRobotEnv:
    try:
        return RosRobotEnv(config, domain_id=domain_id, timeout_s=20.0)
    except Exception:
        alive = stand_in.poll() is None
        print(f"stand-in alive: {alive}\n" + (tmp_path / "stand_in.log").read_text()[-3000:])
        raise


def test_episode_reproduces_in_process_benchmark_and_seeded_resets_repeat(
    quick_config: Path, ros_domain_id: int, stand_in: subprocess.Popen, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    env = _make_env(quick_config, ros_domain_id, stand_in, tmp_path)
    ref = gymnasium.make("BipedalWalker-v3")
    try:
        assert env.observation_space.shape == (24,) and env.action_space.shape == (4,)
        seed = 7
        # The stand-in's first seeded episode: Box2D's contact order depends on how often its world was reset
        # (also in-process), so the comparison episode is the stand-in's first, as it is the reference's.
        obs, info = env.reset(seed=seed)
        ref_obs, _ = ref.reset(seed=seed)
        assert isinstance(info, dict) and obs.dtype == np.float32
        np.testing.assert_allclose(obs, ref_obs, atol=1e-5)  # rebuilt from robot signals: equal to float32 rounding

        actions = np.random.default_rng(seed).uniform(-1.0, 1.0, (500, 4)).astype(np.float32)
        ros_rewards, ref_rewards = [], []
        for action in actions:
            obs, reward, terminated, truncated, info = env.step(action)
            ref_obs, ref_reward, ref_terminated, _, _ = ref.step(action)
            assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
            assert not info["intervened"], info["safety_reasons"]  # the walker's limits never alter the benchmark
            ros_rewards.append(reward)
            ref_rewards.append(float(ref_reward))
            np.testing.assert_allclose(obs, ref_obs, atol=1e-4)
            assert terminated == ref_terminated
            if terminated or truncated:
                break
        assert terminated or truncated
        if truncated:  # the config's episode_seconds (4 s at 50 Hz), not the benchmark's limit
            assert len(ros_rewards) == 200
        assert ros_rewards == ref_rewards  # the privileged reward: exactly the benchmark's, step for step
        assert sum(ros_rewards) == sum(ref_rewards)
        with pytest.raises(RuntimeError, match="reset"):
            env.step(actions[0])  # the episode is over

        # Seeded resets repeat; a different seed differs; an unseeded reset continues the seeded generator.
        first, _ = env.reset(seed=seed)
        again, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(first, again)
        np.testing.assert_allclose(first, ref.reset(seed=seed)[0], atol=1e-5)
        other, _ = env.reset(seed=seed + 1)
        assert not np.array_equal(first, other)
        env.reset(seed=seed)
        ref.reset(seed=seed)
        np.testing.assert_allclose(env.reset()[0], ref.reset()[0], atol=1e-5)
    finally:
        env.close()
        ref.close()
    env.close()  # closing twice is allowed
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()
    print(f"episode of {len(ros_rewards)} steps, return {sum(ros_rewards):.3f}; {time.monotonic() - t0:.1f} s")


def test_registered_env_passes_the_gymnasium_checker(
    quick_config: Path, ros_domain_id: int, stand_in: subprocess.Popen, tmp_path: Path
) -> None:
    from gymnasium.utils.env_checker import check_env

    assert register_ros_env() == ENV_ID
    register_ros_env()  # idempotent
    env = gymnasium.make(ENV_ID, config=str(quick_config), domain_id=ros_domain_id, timeout_s=20.0)
    try:
        assert isinstance(env.unwrapped, RosRobotEnv) and env.spec is not None
        # With a spec the checker also requires reset(seed) → reset() to repeat.
        check_env(env.unwrapped, skip_render_check=True)
        obs, _ = env.reset(seed=3)
        _, reward, terminated, _, _ = env.step(env.action_space.sample())
        assert np.isfinite(reward) and isinstance(terminated, bool) and obs in env.observation_space
    finally:
        env.close()


def test_packaged_walker_limits_never_alter_the_benchmark() -> None:
    """In-process, no ROS: the packaged description's safety limits leave random BipedalWalker episodes alone."""
    safety_cfg = SafetyConfig(**ROBOT["safety"])
    description = load_robot(ROBOT["description"])
    env = gymnasium.make("BipedalWalker-v3")
    interventions = []
    try:
        for seed in range(10):
            obs, _ = env.reset(seed=seed)
            safety = SafetyLayer(safety_cfg, description, 1.0 / ROBOT["control_rate_hz"])
            rng = np.random.default_rng(seed)
            for t in range(300):
                action = rng.uniform(-1.0, 1.0, 4)
                state = walker.obs_to_state(obs, np.zeros(4), t * 0.02)
                safety.note_sensor("joint_states", state.stamp)
                safety.note_sensor("imu", state.stamp)
                result = safety.filter(action * walker.MOTORS_TORQUE, state, state.stamp)
                if result.intervened:
                    interventions.append((seed, t, result.reasons, state.joint_position.round(2).tolist()))
                obs, _, terminated, truncated, _ = env.step(action.astype(np.float32))
                if terminated or truncated:
                    break
    finally:
        env.close()
    assert not interventions, interventions[:5]


def test_legged_robot_step_is_the_same_in_process_and_through_ros(
    ros_env: dict[str, str], ros_domain_id: int, proc_reaper, tmp_path: Path
) -> None:
    """The quadruped under quadruped_hw's strict safety layer (rate limits, low-pass filter): the same actions
    give the same executed commands, observations and rewards in process (LeggedEnv) as through ROS (the
    PyBullet stand-in driven by RosRobotEnv), and the safety layer really changes them on both paths."""
    from sac_robot.core.config import load_config
    from sac_robot.envs.legged_env import LeggedEnv

    cfg = load_config("quadruped_hw").model_dump(mode="json")
    cfg["robot"].update(lockstep=True, reset={"mode": "sim_service"}, episode_seconds=3)
    cfg["robot"]["safety"]["sensor_timeout_s"] = 0.5
    config = tmp_path / "quadruped_strict.yaml"
    config.write_text(yaml.safe_dump(cfg))
    log = open(tmp_path / "stand_in.log", "w")  # noqa: SIM115 (closed with the process)
    cmd = [sys.executable, "-m", "sac_robot.nodes.pybullet_stand_in", "--ros-args", "-r", "__node:=stand_in"]
    cmd += ["-p", f"config:={config}", "-p", "lockstep:=true"]
    stand_in = proc_reaper.spawn(cmd, env=ros_env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    ros = _make_env(config, ros_domain_id, stand_in, tmp_path)
    local = LeggedEnv("quadruped", run_config=cfg["robot"])
    try:
        obs, _ = ros.reset()  # no sensor noise: nothing to seed (the PyBullet stand-in has no reseed counter)
        ref, _ = local.reset(seed=1)
        np.testing.assert_allclose(obs, ref, atol=1e-5)
        actions = np.random.default_rng(0).uniform(-1.0, 1.0, (40, 12))
        intervened = 0
        for action in actions:
            obs, reward, terminated, truncated, info = ros.step(action)
            ref, ref_reward, ref_terminated, ref_truncated, ref_info = local.step(action)
            np.testing.assert_allclose(info["executed_action"], ref_info["executed_action"], atol=1e-6)
            assert np.max(np.abs(ref_info["executed_action"] - np.clip(action, -1, 1))) > 1e-3  # limits acted
            assert info["safety_reasons"] == ref_info["safety_reasons"]
            intervened += ref_info["intervened"]
            np.testing.assert_allclose(obs, ref, atol=1e-4)
            assert reward == pytest.approx(ref_reward, abs=1e-4)
            assert (terminated, truncated) == (ref_terminated, ref_truncated)
            if terminated or truncated:
                break
        assert intervened > 0  # the rate limit / filter counted as interventions on both paths
    finally:
        ros.close()
        local.close()
