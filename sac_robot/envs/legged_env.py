# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Gymnasium environment of a described legged robot walking on flat ground in PyBullet.

It runs the robot step the collector runs on the real robot (robot.robot_step: the pipeline's action
mapping, **the safety layer**, the observation, reward and termination), so a policy trained here saw the
limits and filters it is deployed behind, and its hyper-parameters and reward can be debugged in seconds
on a laptop before touching hardware. Two ways to configure it:

* ``run_config=`` a config's ``robot:`` section (what ``sac-robot train`` passes when the config has one):
  robot, control rate, action mapping, observation, reward, termination, safety and episode length all
  come from it, so the in-process run and the ROS run read the same block;
* plain keyword values, pydantic configs or dicts (``gymnasium.make("SacRobotQuadruped-v0",
  action_scale=0.2)``); ``safety`` then defaults to the safety layer's defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from sac_robot.core.config import ConfigError
from sac_robot.envs import ROBOT_KWARGS
from sac_robot.robot.description import RobotDescription, load_robot
from sac_robot.robot.observation import ObservationBuilder, ObservationConfig
from sac_robot.robot.pipeline import Pipeline, RobotRunConfig, check_action_scale, parse_robot_config
from sac_robot.robot.rewards import RewardConfig
from sac_robot.robot.robot_step import RobotStep
from sac_robot.robot.safety import SafetyConfig, SafetyLayer
from sac_robot.robot.state import RobotState
from sac_robot.robot.terminations import TerminationConfig
from sac_robot.sim.pybullet_robot import PyBulletRobot, SensorNoise

ENV_IDS: dict[str, str] = {"SacRobotQuadruped-v0": "quadruped", "SacRobotBiped-v0": "biped"}
RESET_OPTIONS = ("pose", "base_position", "base_orientation")
# Keyword arguments that a run_config replaces (giving both would leave one of them silently unused).
RUN_CONFIG_FIELDS = tuple(sorted(ROBOT_KWARGS - {"robot"}))


def _as_config(value: Any, model: type, name: str) -> Any:
    if value is None:
        return model()
    if isinstance(value, model):
        return value
    if isinstance(value, dict):
        return model.model_validate(value)
    raise TypeError(f"{name} must be a {model.__name__}, a dict or None, got {type(value).__name__}")


class LeggedEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Actions in [-1, 1] are joint offsets from home times the action scale (rad), through the safety layer,
    held by joint PD control."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        robot: str | Path | RobotDescription = "quadruped",
        control_hz: float | None = None,
        physics_hz: float = 500.0,
        action_scale: float | Sequence[float] | None = None,
        max_episode_seconds: float | None = None,
        observation: ObservationConfig | dict | None = None,
        reward: RewardConfig | dict | None = None,
        termination: TerminationConfig | dict | None = None,
        safety: SafetyConfig | dict | None = None,
        sensor_noise: SensorNoise | dict | None = None,
        render_mode: str | None = None,
        render_width: int = 320,
        render_height: int = 240,
        run_config: RobotRunConfig | dict | None = None,
    ) -> None:
        super().__init__()
        if run_config is not None:
            given = {"control_hz": control_hz, "action_scale": action_scale, "max_episode_seconds": max_episode_seconds}
            given |= {"observation": observation, "reward": reward, "termination": termination, "safety": safety}
            clash = [k for k in RUN_CONFIG_FIELDS if given[k] is not None]
            if clash:
                raise ValueError(f"{clash} come from run_config (the config's robot section); give them there")
            rc = run_config if isinstance(run_config, RobotRunConfig) else parse_robot_config(run_config, "run_config")
            self.description = robot if isinstance(robot, RobotDescription) else load_robot(robot)
            configured = load_robot(rc.description)
            if configured.name != self.description.name:
                raise ValueError(
                    f"robot {self.description.name!r} differs from run_config's robot.description {rc.description!r}"
                )
        else:
            self.description = robot if isinstance(robot, RobotDescription) else load_robot(robot)
            rc = self._run_config(
                control_hz, action_scale, max_episode_seconds, observation, reward, termination, safety
            )
        unsupported = [
            f"{key}: {value!r}"
            for key, value in (("observation", rc.observation), ("reward", rc.reward), ("termination", rc.termination))
            if isinstance(value, str)
        ]
        if rc.action.mode != "position" or rc.safety.command_mode != "position":
            unsupported.append("action.mode/safety.command_mode: position only")
        if unsupported:
            raise ValueError(f"LeggedEnv cannot run robot section values {unsupported} (terms, position control)")
        check_action_scale(rc, self.description)
        # No e-stop link in process: a heartbeat-guarded e-stop would hold every step (nothing sends it).
        rc = rc.model_copy(update={"safety": rc.safety.model_copy(update={"estop_heartbeat_s": None})})
        self.run_config = rc
        control_hz = rc.control_rate_hz
        if physics_hz <= 0:
            raise ValueError(f"physics_hz must be positive, got {physics_hz}")
        ratio = physics_hz / control_hz
        self.substeps = round(ratio)
        if self.substeps < 1 or abs(ratio - self.substeps) > 1e-9:
            raise ValueError(f"physics_hz ({physics_hz}) must be a whole multiple of control_hz ({control_hz})")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.control_hz = float(control_hz)
        self.max_episode_seconds = float(rc.episode_seconds)
        self.render_mode = render_mode
        self.render_width, self.render_height = int(render_width), int(render_height)
        self.metadata = {**type(self).metadata, "render_fps": self.control_hz}  # type: ignore[misc]

        n = len(self.description.joints)
        builder = ObservationBuilder(rc.observation, self.description, n)
        self.pipe = Pipeline(rc, self.description, builder, builder.size, n)
        self.safety = SafetyLayer(rc.safety, self.description, 1.0 / self.control_hz)
        self.step_logic = RobotStep(self.pipe, self.safety)
        self.max_episode_steps = self.step_logic.max_steps
        self._lower = self.description.array("lower")
        self._upper = self.description.array("upper")

        self.action_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        self.observation_space = spaces.Box(builder.low, builder.high, dtype=np.float32)
        noise = _as_config(sensor_noise, SensorNoise, "sensor_noise")
        self.robot = PyBulletRobot(self.description, physics_hz=physics_hz, control_mode="position", sensor_noise=noise)
        self._steps = 0
        self._state: RobotState | None = None  # the newest reading: what the next action is checked against

    def _run_config(
        self,
        control_hz: float | None,
        action_scale: float | Sequence[float] | None,
        max_episode_seconds: float | None,
        observation: ObservationConfig | dict | None,
        reward: RewardConfig | dict | None,
        termination: TerminationConfig | dict | None,
        safety: SafetyConfig | dict | None,
    ) -> RobotRunConfig:
        """The robot section the keyword arguments amount to (ValueError naming a bad one)."""
        control_hz = 20.0 if control_hz is None else control_hz
        max_episode_seconds = 20.0 if max_episode_seconds is None else max_episode_seconds
        if not control_hz > 0:
            raise ValueError(f"control_hz must be positive, got {control_hz}")
        if not max_episode_seconds > 0:
            raise ValueError(f"max_episode_seconds must be positive, got {max_episode_seconds}")
        scale = 0.3 if action_scale is None else action_scale
        arr = np.asarray(scale, dtype=np.float64)
        if arr.ndim > 1 or (arr.ndim == 1 and len(arr) != len(self.description.joints)):
            raise ValueError(f"action_scale must be one value or one per joint, got {action_scale}")
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"action_scale must be positive (one value or one per joint), got {action_scale}")
        try:
            return RobotRunConfig(
                description=self.description.name,
                observation=_as_config(observation, ObservationConfig, "observation"),
                action={"mode": "position", "scale": arr.tolist()},
                reward=_as_config(reward, RewardConfig, "reward"),
                termination=_as_config(termination, TerminationConfig, "termination"),
                safety=_as_config(safety, SafetyConfig, "safety"),
                control_rate_hz=control_hz,
                episode_seconds=max_episode_seconds,
            )
        except (ConfigError, ValueError) as err:
            raise ValueError(str(err)) from None

    @property
    def observation_layout(self) -> list[tuple[str, int, int]]:
        """(term, start, end) of each observation term: recorded with exported policies."""
        return list(self.pipe.observation.layout)

    @property
    def reward_config(self) -> RewardConfig:
        """The reward terms in force (the robot section's)."""
        return self.run_config.reward

    def action_to_target(self, action: np.ndarray) -> np.ndarray:
        """Joint position targets a normalised action asks for (home + action·scale, within the joint limits),
        before the safety layer's margins, rate limits and filter."""
        return np.clip(self.pipe.action_to_command(action), self._lower, self._upper)

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
        self._steps = 0
        state = self._sense()
        self.step_logic.start_episode(state.joint_position)  # rate limits ramp from the measured pose
        return self.step_logic.observe(state), {"sim_time": self.robot.sim_time}

    def _sense(self) -> RobotState:
        """The robot's state (the one reading the policy observes and the safety layer checks), fed to the
        safety layer's watchdog as the collector's sensor callbacks do."""
        state = self._state = self.robot.state()
        self.safety.note_sensor("joint_states", self.robot.sim_time)
        self.safety.note_sensor("imu", self.robot.sim_time)
        return state

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError("action contains non-finite values")
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        safe, executed = self.step_logic.act(action, self._state, self.robot.sim_time)
        self.robot.set_command(safe.command)
        self.robot.step(self.substeps)
        state = self._sense()
        out = self.step_logic.outcome(state, None, self._steps)
        self._steps += 1
        info = {
            "reward_terms": out.terms,
            "fall_reason": out.fall_reason,
            "sim_time": self.robot.sim_time,
            "executed_action": executed.astype(np.float32),
            "intervened": bool(safe.intervened),
            "safety_reasons": list(safe.reasons),
        }
        return self.step_logic.observe(state), out.reward, out.terminated, out.truncated, info

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
