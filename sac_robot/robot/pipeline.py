# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The `robot:` section of a config and everything built from it: one robot-side pipeline.

Collector, learner, gymnasium-over-ROS env and deploy node all call `build_pipeline`, so they agree
on the observation size and layout, the action mapping and the limits without talking to each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sac_robot.core.config import Config, ConfigError, _format_errors, load_config
from sac_robot.robot.box2d_walker import WalkerObservation
from sac_robot.robot.description import RobotDescription, load_robot
from sac_robot.robot.observation import ObservationBuilder, ObservationConfig
from sac_robot.robot.reset import ResetConfig
from sac_robot.robot.rewards import RewardConfig
from sac_robot.robot.safety import SafetyConfig
from sac_robot.robot.terminations import TerminationConfig


class ActionConfig(BaseModel):
    """How a policy action in [-1, 1]^J becomes a joint command."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["position", "effort"] = "position"
    scale: float | list[float] = Field(
        default=0.3, description="position mode: rad of offset around home per unit action (one, or one per joint)"
    )

    @field_validator("scale")
    @classmethod
    def _positive(cls, value: float | list[float]) -> float | list[float]:
        values = value if isinstance(value, list) else [value]
        if not values or not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"must be positive (one value or one per joint), got {value}")
        return value


class SecurityConfig(BaseModel):
    """Message authentication between collectors and the learner (see README, SROS2)."""

    model_config = ConfigDict(extra="forbid")

    key_file: str | None = Field(
        default=None, description="file with a shared secret (>= 16 bytes): weights and transitions are HMAC-signed"
    )


class RobotRunConfig(BaseModel):
    """Everything the ROS path needs beyond the SAC and replay sections."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(description="robot description: a packaged name (quadruped) or a YAML path")
    observation: Literal["bipedal_walker"] | ObservationConfig = Field(
        default_factory=ObservationConfig, description="'bipedal_walker' or a list of observation terms"
    )
    action: ActionConfig = Field(default_factory=ActionConfig)
    reward: Literal["privileged"] | RewardConfig = Field(
        default_factory=RewardConfig, description="'privileged' (the stand-in's own reward) or reward terms"
    )
    termination: Literal["privileged"] | TerminationConfig = Field(default_factory=TerminationConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    reset: ResetConfig = Field(default_factory=ResetConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    control_rate_hz: float = Field(default=20.0, gt=0, le=1000)
    lockstep: bool = Field(default=True, description="step the stand-in once per command (simulation only)")
    autostart: bool = Field(
        default=True,
        description="the collector configures and activates (arms) itself at start; false on hardware, "
        "where a person arms it with `sac-robot arm`",
    )
    episode_seconds: float = Field(default=20.0, gt=0, description="episodes are truncated after this long")
    send_batch: int = Field(default=32, ge=1, description="transitions per transitions message")
    publish_every_updates: int = Field(default=200, ge=1, description="learner broadcasts weights this often")
    wait_for_learner: bool = Field(
        default=True, description="simulation: pause the collector while the learner is behind the UTD ratio"
    )
    max_learner_lag_steps: int = Field(default=256, ge=1, description="how far collection may run ahead of UTD")
    eval_every_steps: int = Field(default=10_000, ge=1, description="collector steps between evaluation rounds")
    eval_episodes: int = Field(default=5, ge=0)
    unacked_limit: int = Field(
        default=1_000_000, ge=1, description="transitions kept for re-sending until acked (memory + disk)"
    )
    unacked_memory: int = Field(default=20_000, ge=1, description="of those, how many stay in memory")
    spill_dir: str = Field(
        default="", description="where the rest go on the robot's disk ('': $XDG_STATE_HOME/sac_robot/spill)"
    )
    policy_timeout_s: float = Field(
        default=5.0, gt=0, description="no acknowledgement from the learner for this long: it is gone (reported)"
    )
    on_learner_gone: Literal["run_last_policy", "safe_mode"] = Field(
        default="run_last_policy",
        description="real time, while the learner is gone: keep acting with the last policy (and keep every "
        "transition for it), or hold the safety layer's safe mode and collect nothing",
    )


@dataclass
class Pipeline:
    cfg: RobotRunConfig
    description: RobotDescription
    observation: ObservationBuilder | WalkerObservation
    obs_dim: int
    act_dim: int

    def __post_init__(self) -> None:
        # Both mappings run every control step: the per-joint arrays are built once.
        self._effort = self.description.array("effort")
        self._home = self.description.array("home")
        self._scale = np.broadcast_to(np.asarray(self.cfg.action.scale, dtype=np.float64), self._home.shape).copy()

    def action_to_command(self, action: np.ndarray) -> np.ndarray:
        """Map a policy action in [-1, 1]^J to the joint command the robot takes."""
        a = np.minimum(np.maximum(np.asarray(action, dtype=np.float64), -1.0), 1.0)
        if self.cfg.action.mode == "effort":
            return a * self._effort
        return self._home + a * self._scale

    def command_to_action(self, command: np.ndarray) -> np.ndarray:
        """The action actually executed after the safety layer changed the command (stored for learning)."""
        if self.cfg.action.mode == "effort":
            a = command / self._effort
        else:
            a = (command - self._home) / self._scale
        return np.minimum(np.maximum(a, -1.0), 1.0)

    @property
    def needs(self) -> tuple[str, ...]:
        """Robot topics a training step reads: the observation's (joint_states and imu always), those of the
        reward terms, and the stand-in's privileged/step when reward or termination is 'privileged'."""
        privileged = ("privileged",) if "privileged" in (self.cfg.reward, self.cfg.termination) else ()
        return self._sensor_needs() + privileged

    def _sensor_needs(self) -> tuple[str, ...]:
        if isinstance(self.observation, WalkerObservation):
            return tuple(self.observation.needs)
        terms = set(self.observation.config.terms)
        needs = ["joint_states", "imu"]
        if "base_linear_velocity" in terms or (
            isinstance(self.cfg.reward, RewardConfig) and self.cfg.reward.forward_velocity > 0
        ):
            needs.append("odom")
        if "foot_contact" in terms:
            needs.append("foot_contacts")
        return tuple(needs)


def check_action_scale(cfg: RobotRunConfig, description: RobotDescription) -> None:
    """A per-joint action scale has one value per joint (ConfigError naming the key otherwise)."""
    scale, n = cfg.action.scale, len(description.joints)
    if isinstance(scale, list) and len(scale) != n:
        raise ConfigError(f"robot.action.scale: {len(scale)} values for the {n} joints of {description.name}")


def parse_robot_config(data: dict[str, Any] | None, source: str = "config") -> RobotRunConfig:
    if data is None:
        raise ConfigError(f"invalid configuration in {source}:\n  robot: this job needs a 'robot' section")
    try:
        return RobotRunConfig.model_validate(data)
    except ValidationError as err:
        text = _format_errors(err, source)
        raise ConfigError(text.replace("\n  ", "\n  robot.")) from None


def build_pipeline(data: dict[str, Any] | RobotRunConfig | None, source: str = "config") -> Pipeline:
    cfg = data if isinstance(data, RobotRunConfig) else parse_robot_config(data, source)
    try:
        description = load_robot(cfg.description)
    except (FileNotFoundError, ValidationError) as err:
        raise ConfigError(f"robot.description: {err}") from None
    act_dim = len(description.joints)
    check_action_scale(cfg, description)
    if cfg.observation == "bipedal_walker":
        observation: ObservationBuilder | WalkerObservation = WalkerObservation()
    else:
        observation = ObservationBuilder(cfg.observation, description, act_dim)
    if cfg.action.mode != cfg.safety.command_mode:
        raise ConfigError(
            f"robot.action.mode ({cfg.action.mode}) must match robot.safety.command_mode ({cfg.safety.command_mode})"
        )
    return Pipeline(cfg, description, observation, observation.size, act_dim)


@dataclass(frozen=True)
class Job:
    """A whole job's configuration, validated together once: the training sections and the robot pipeline
    built from the robot section. Every node and the CLI start from one of these."""

    config: Config
    pipe: Pipeline
    source: str  # the config parameter as given (a packaged name or a path)


def load_job(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Job:
    """Load a config with its robot section (ConfigError naming the bad key, in either part)."""
    config = load_config(name_or_path, overrides)
    return Job(config, build_pipeline(config.robot, str(name_or_path)), str(name_or_path))
