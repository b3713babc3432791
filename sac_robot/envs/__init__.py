# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Gymnasium environments: the in-process reference path and our own robots. (The gymnasium view of a ROS
robot, SacRobotRos-v0, talks ROS and so lives in the nodes layer: sac_robot.nodes.ros_env.)"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from sac_robot.core.config import ConfigError, EnvConfig

# LeggedEnv keyword arguments that a config's robot section gives (a config names its robot once).
ROBOT_KWARGS = frozenset(
    ("robot", "control_hz", "action_scale", "max_episode_seconds", "observation", "reward", "termination", "safety")
)


def make_env(
    cfg: EnvConfig, render_mode: str | None = None, robot: dict[str, Any] | None = None, **overrides: Any
) -> gym.Env:
    """Create the environment a config names, with a message that names env.id when it is unknown.

    ``robot``: the config's robot section. Our legged envs take it as their whole robot configuration
    (the robot step the collector runs, safety layer included), so a config names its robot once.
    """
    kwargs = {**cfg.kwargs, **overrides}
    if cfg.id.startswith("SacRobot") and cfg.id != "SacRobotRos-v0":  # that one: sac_robot.nodes.ros_env
        from sac_robot.envs.legged_env import ENV_IDS, register_envs

        register_envs()
        if robot is not None and cfg.id in ENV_IDS:
            twice = sorted(set(cfg.kwargs) & ROBOT_KWARGS)
            if twice:
                raise ConfigError(
                    f"env.kwargs: {twice} repeat what the robot section says (robot.description, control_rate_hz, "
                    "action, observation, reward, termination, safety, episode_seconds): name the robot once, in robot:"
                )
            kwargs["run_config"] = robot
            kwargs["robot"] = robot.get("description", ENV_IDS[cfg.id])  # a robot of one's own, by name or path
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    try:
        env = gym.make(cfg.id, render_mode=render_mode, **kwargs)
    except gym.error.Error as err:
        raise ConfigError(f"env.id: cannot create environment {cfg.id!r} ({err})") from None
    except (ValueError, TypeError) as err:  # our envs check their arguments: say which env refused what
        raise ConfigError(f"env {cfg.id}: {err}") from None
    if not isinstance(env.observation_space, gym.spaces.Box) or not isinstance(env.action_space, gym.spaces.Box):
        raise ConfigError(f"env.id: {cfg.id!r} must have Box observation and action spaces for SAC")
    if len(env.observation_space.shape) != 1 or len(env.action_space.shape) != 1:
        raise ConfigError(f"env.id: {cfg.id!r} must have flat (1-D) observation and action spaces")
    return env
