# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""LeggedEnv is a well-behaved, reproducible gymnasium environment that ends episodes on falls."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sac_robot.envs.legged_env import ENV_IDS, LeggedEnv, register_envs

SIDE = np.array([math.sin(math.pi / 4), 0.0, 0.0, math.cos(math.pi / 4)])
NOISE = {"std": {"joint_position": 0.01, "imu_angular_velocity": 0.05}, "dropout": 0.1, "latency_steps": 3}


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_registered_envs_pass_the_gymnasium_checker(env_id: str) -> None:
    assert register_envs() == list(ENV_IDS)
    register_envs()  # idempotent
    env = gymnasium.make(env_id, render_mode="rgb_array", sensor_noise=NOISE, reward={"alive": 0.5})
    try:
        check_env(env.unwrapped)
        assert env.unwrapped.reward_config.alive == 0.5  # dict kwargs reach the pydantic configs
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    finally:
        env.close()


def rollout(env: LeggedEnv, seed: int, steps: int = 15) -> list[tuple[np.ndarray, float]]:
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(seed).uniform(-1.0, 1.0, (steps, *env.action_space.shape)).astype(np.float32)
    out = [(obs, 0.0)]
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append((obs, reward))
        if terminated or truncated:
            break
    return out


def test_fixed_seed_is_deterministic() -> None:
    first, second = LeggedEnv("quadruped", sensor_noise=NOISE), LeggedEnv("quadruped", sensor_noise=NOISE)
    try:
        a, b = rollout(first, seed=5), rollout(second, seed=5)
        again = rollout(first, seed=5)  # the same env after an episode, re-seeded
        for (obs_a, rew_a), (obs_b, rew_b), (obs_c, rew_c) in zip(a, b, again, strict=True):
            np.testing.assert_array_equal(obs_a, obs_b)
            np.testing.assert_array_equal(obs_a, obs_c)
            assert rew_a == rew_b == rew_c
        other = rollout(second, seed=6)
        assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, other))
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("robot", ["quadruped", "biped"])
def test_episode_terminates_when_lying_on_its_side(robot: str) -> None:
    env = LeggedEnv(robot)
    try:
        env.reset(seed=0, options={"base_orientation": SIDE})
        _, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        assert terminated and not truncated
        assert reward < 0.0  # the fall penalty outweighs everything a fallen robot can still earn
        assert "roll" in info["fall_reason"]
        assert info["reward_terms"]["fall"] == -env.reward_config.fall_penalty
        with pytest.raises(ValueError, match="unknown reset options"):
            env.reset(options={"teleport": True})
    finally:
        env.close()


def test_standing_still_is_truncated_not_terminated() -> None:
    env = LeggedEnv("quadruped", max_episode_seconds=1.0)
    try:
        env.reset(seed=0)
        zero = np.zeros(12, dtype=np.float32)
        for step in range(1, 21):
            _, reward, terminated, truncated, info = env.step(zero)
            assert not terminated
            assert truncated == (step == 20)
            assert reward > 0.0
        assert info["sim_time"] == pytest.approx(1.0)  # 20 Hz control over 500 Hz physics
    finally:
        env.close()


def test_actions_are_offsets_around_home_clipped_to_limits() -> None:
    env = LeggedEnv("quadruped", action_scale=0.5)
    try:
        desc = env.description
        np.testing.assert_allclose(env.action_to_target(np.zeros(12)), desc.array("home"))
        np.testing.assert_allclose(
            env.action_to_target(np.full(12, 0.5)), np.minimum(desc.array("home") + 0.25, desc.array("upper"))
        )
        high = env.action_to_target(np.full(12, 5.0))  # out-of-range actions are clipped to [-1, 1] first
        np.testing.assert_allclose(high, np.minimum(desc.array("home") + 0.5, desc.array("upper")))
        assert np.all(high <= desc.array("upper"))
        with pytest.raises(ValueError, match="non-finite"):
            env.step(np.full(12, np.nan))
    finally:
        env.close()
    with pytest.raises(ValueError, match="whole multiple"):
        LeggedEnv("quadruped", control_hz=30.0)
    with pytest.raises(ValueError, match="action_scale"):
        LeggedEnv("quadruped", action_scale=-0.1)


def test_a_config_names_its_robot_once() -> None:
    """The robot section is the legged env's whole robot configuration; repeating a robot key in env.kwargs, or
    giving one beside run_config, is refused with the key named instead of silently using one of the two."""
    from sac_robot.core.config import ConfigError, load_config
    from sac_robot.envs import make_env

    cfg = load_config("quadruped", {"env.kwargs.action_scale": 0.2})
    with pytest.raises(ConfigError, match="action_scale"):
        make_env(cfg.env, robot=cfg.robot)
    with pytest.raises(ValueError, match="control_hz"):
        LeggedEnv("quadruped", run_config=cfg.robot, control_hz=30.0)
    with pytest.raises(ValueError, match="biped"):
        LeggedEnv("biped", run_config=cfg.robot)
    env = make_env(load_config("quadruped").env, robot=cfg.robot)
    try:  # everything from the robot section: the env runs its safety layer at its control rate
        assert env.unwrapped.control_hz == cfg.robot["control_rate_hz"]
        assert env.unwrapped.safety.config.max_velocity_fraction == cfg.robot["safety"]["max_velocity_fraction"]
    finally:
        env.close()


def test_a_robot_of_ones_own_trains_in_process_from_the_robot_section(tmp_path) -> None:
    """robot.description may name any description file: the in-process env loads that robot, not the registered
    default of the env id."""
    import yaml

    from sac_robot.core.config import load_config
    from sac_robot.envs import make_env
    from sac_robot.robot.description import package_share

    data = yaml.safe_load((package_share() / "config" / "robots" / "quadruped.yaml").read_text())
    data.update(name="my_dog", urdf=str(package_share() / "urdf" / "quadruped.urdf"))
    path = tmp_path / "my_dog.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config("quadruped", {"robot.description": str(path), "robot.safety.estop_heartbeat_s": 0.5})
    env = make_env(cfg.env, robot=cfg.robot)
    try:
        assert env.unwrapped.description.name == "my_dog"
        env.reset(seed=0)
        _, _, _, _, info = env.step(np.zeros(12))
        assert "estop_heartbeat" not in info["safety_reasons"]  # no e-stop link in process: nothing to wait for
    finally:
        env.close()
