# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Gymnasium environments: the in-process reference path and our own robots. (The gymnasium view of a ROS
robot, SacRobotRos-v0, talks ROS and so lives in the nodes layer: sac_robot.nodes.ros_env.)"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from sac_robot.core.config import ConfigError, EnvConfig


def make_env(cfg: EnvConfig, render_mode: str | None = None, **overrides: Any) -> gym.Env:
    """Create the environment a config names, with a message that names env.id when it is unknown."""
    if cfg.id.startswith("SacRobot") and cfg.id != "SacRobotRos-v0":  # that one: sac_robot.nodes.ros_env
        from sac_robot.envs.legged_env import register_envs

        register_envs()
    kwargs = {**cfg.kwargs, **overrides}
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    try:
        env = gym.make(cfg.id, render_mode=render_mode, **kwargs)
    except gym.error.Error as err:
        raise ConfigError(f"env.id: cannot create environment {cfg.id!r} ({err})") from None
    if not isinstance(env.observation_space, gym.spaces.Box) or not isinstance(env.action_space, gym.spaces.Box):
        raise ConfigError(f"env.id: {cfg.id!r} must have Box observation and action spaces for SAC")
    if len(env.observation_space.shape) != 1 or len(env.action_space.shape) != 1:
        raise ConfigError(f"env.id: {cfg.id!r} must have flat (1-D) observation and action spaces")
    return env
