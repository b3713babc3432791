# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Gymnasium environment of a described legged robot walking on flat ground in PyBullet.

It composes exactly the pieces the real-robot collector uses (joint-offset actions around home,
ObservationBuilder, compute_reward, check_fall), so a policy, its hyper-parameters and the reward can
be debugged in seconds on a laptop before touching hardware. Constructor arguments are plain values,
pydantic configs or dicts, so ``gymnasium.make("SacRobotQuadruped-v0", action_scale=0.2)`` works.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from sac_robot.robot.description import RobotDescription, load_robot
from sac_robot.robot.observation import ObservationBuilder, ObservationConfig
from sac_robot.robot.rewards import RewardConfig, compute_reward
from sac_robot.robot.terminations import TerminationConfig, check_fall
from sac_robot.sim.pybullet_robot import PyBulletRobot, SensorNoise

ENV_IDS: dict[str, str] = {"SacRobotQuadruped-v0": "quadruped", "SacRobotBiped-v0": "biped"}
RESET_OPTIONS = ("pose", "base_position", "base_orientation")


def _as_config(value: Any, model: type, name: str) -> Any:
    if value is None:
        return model()
    if isinstance(value, model):
        return value
    if isinstance(value, dict):
        return model.model_validate(value)
    raise TypeError(f"{name} must be a {model.__name__}, a dict or None, got {type(value).__name__}")


class LeggedEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Actions in [-1, 1] are joint offsets from home times ``action_scale`` (rad), held by joint PD control."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        robot: str | Path | RobotDescription = "quadruped",
        control_hz: float = 20.0,
        physics_hz: float = 500.0,
        action_scale: float | Sequence[float] = 0.3,
        max_episode_seconds: float = 20.0,
        observation: ObservationConfig | dict | None = None,
        reward: RewardConfig | dict | None = None,
        termination: TerminationConfig | dict | None = None,
        sensor_noise: SensorNoise | dict | None = None,
        render_mode: str | None = None,
        render_width: int = 320,
        render_height: int = 240,
    ) -> None:
        super().__init__()
        self.description = robot if isinstance(robot, RobotDescription) else load_robot(robot)
        if control_hz <= 0 or physics_hz <= 0:
            raise ValueError(f"control_hz and physics_hz must be positive, got {control_hz} and {physics_hz}")
        ratio = physics_hz / control_hz
        self.substeps = round(ratio)
        if self.substeps < 1 or abs(ratio - self.substeps) > 1e-9:
            raise ValueError(f"physics_hz ({physics_hz}) must be a whole multiple of control_hz ({control_hz})")
        if max_episode_seconds <= 0:
            raise ValueError(f"max_episode_seconds must be positive, got {max_episode_seconds}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.control_hz = float(control_hz)
        self.max_episode_seconds = float(max_episode_seconds)
        self.max_episode_steps = max(1, round(max_episode_seconds * control_hz))
        self.render_mode = render_mode
        self.render_width, self.render_height = int(render_width), int(render_height)
        self.metadata = {**type(self).metadata, "render_fps": self.control_hz}  # type: ignore[misc]

        n = len(self.description.joints)
        scale = np.broadcast_to(np.asarray(action_scale, dtype=np.float64), (n,)).copy()
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise ValueError(f"action_scale must be positive (one value or one per joint), got {action_scale}")
        self.action_scale = scale
        self._home = self.description.array("home")
        self._lower = self.description.array("lower")
        self._upper = self.description.array("upper")

        self.observation_config = _as_config(observation, ObservationConfig, "observation")
        self.reward_config = _as_config(reward, RewardConfig, "reward")
        self.termination_config = _as_config(termination, TerminationConfig, "termination")
        noise = _as_config(sensor_noise, SensorNoise, "sensor_noise")
        self.builder = ObservationBuilder(self.observation_config, self.description, action_dim=n)

        self.action_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        self.observation_space = spaces.Box(self.builder.low, self.builder.high, dtype=np.float32)
        self.robot = PyBulletRobot(self.description, physics_hz=physics_hz, control_mode="position", sensor_noise=noise)
        self._previous_action = np.zeros(n)
        self._steps = 0

    @property
    def observation_layout(self) -> list[tuple[str, int, int]]:
        """(term, start, end) of each observation term: recorded with exported policies."""
        return list(self.builder.layout)

    def action_to_target(self, action: np.ndarray) -> np.ndarray:
        """Joint position targets for a normalised action: home + action·scale, clipped to the joint limits."""
        return np.clip(self._home + np.clip(action, -1.0, 1.0) * self.action_scale, self._lower, self._upper)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start standing at home; ``options`` may give ``pose``, ``base_position``, ``base_orientation``."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; expected some of {list(RESET_OPTIONS)}")
        robot_seed = int(self.np_random.integers(0, 2**31 - 1))
        self.robot.reset(seed=robot_seed, **options)
        self._previous_action = np.zeros(len(self._home))
        self._steps = 0
        state = self.robot.state()
        observation = self.builder.build(state, self._previous_action)
        return observation, {"sim_time": self.robot.sim_time}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError("action contains non-finite values")
        action = np.clip(action, -1.0, 1.0)
        self.robot.set_command(self.action_to_target(action))
        self.robot.step(self.substeps)
        state = self.robot.state()
        observation = self.builder.build(state, action)
        fall_reason = check_fall(self.termination_config, state)
        terminated = fall_reason is not None
        reward, terms = compute_reward(
            self.reward_config, self.description, state, action, self._previous_action, fell=terminated
        )
        self._previous_action = action
        self._steps += 1
        truncated = not terminated and self._steps >= self.max_episode_steps
        info = {"reward_terms": terms, "fall_reason": fall_reason, "sim_time": self.robot.sim_time}
        return observation, reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without render_mode; create the env with render_mode='rgb_array'")
            return None
        return self.robot.render(self.render_width, self.render_height)

    def close(self) -> None:
        self.robot.close()


def register_envs() -> list[str]:
    """Register SacRobotQuadruped-v0 and SacRobotBiped-v0 with gymnasium (safe to call repeatedly)."""
    for env_id, robot in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=f"{__name__}:LeggedEnv", kwargs={"robot": robot})
    return list(ENV_IDS)
