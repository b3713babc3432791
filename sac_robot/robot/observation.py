# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Turn a RobotState into the flat policy input, with a recorded layout.

The same builder runs in simulation and on the real robot, and an exported policy stores
``ObservationBuilder.layout`` so that a deployment can check it feeds exactly the vector the
policy was trained on (which term, where, in what scale).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sac_robot.robot.description import RobotDescription
from sac_robot.robot.state import RobotState, gravity_in_body

ObservationTerm = Literal[
    "joint_position",
    "joint_velocity",
    "gravity",
    "angular_velocity",
    "linear_acceleration",
    "base_linear_velocity",
    "foot_contact",
    "previous_action",
]
OBSERVATION_TERMS: tuple[str, ...] = ObservationTerm.__args__
# Terms read from RobotState fields that a robot may not provide (no odometry, no foot switches).
OPTIONAL_STATE_FIELD: dict[str, str] = {"base_linear_velocity": "base_linear_velocity", "foot_contact": "foot_contact"}
# Full-scale range of each term before scaling: typical MEMS IMU ranges (±2000 °/s, ±16 g), generous
# bounds elsewhere. Observations are clipped to them, so the observation space is bounded and a glitching
# sensor cannot feed the network values it never saw in training.
TERM_RANGE: dict[str, float] = {
    "joint_velocity": 100.0,  # rad/s
    "gravity": 1.0,  # unit vector
    "angular_velocity": math.radians(2000.0),  # rad/s
    "linear_acceleration": 16.0 * 9.81,  # m/s²
    "base_linear_velocity": 20.0,  # m/s
    "previous_action": 1.0,  # normalised actions
}
JOINT_POSITION_MARGIN = 0.1  # rad beyond the limits: simulators and encoders overshoot slightly


class ObservationError(ValueError):
    """The state cannot provide a configured observation term; the message names the term."""


class ObservationConfig(BaseModel):
    """Which terms the policy sees, in order, and how each is scaled (to roughly unit magnitude)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: list[ObservationTerm] = Field(
        default_factory=lambda: ["joint_position", "joint_velocity", "gravity", "angular_velocity", "previous_action"],
        min_length=1,
    )
    scales: dict[ObservationTerm, float] = Field(
        default_factory=lambda: {"joint_velocity": 0.1, "angular_velocity": 0.25, "linear_acceleration": 0.1},
        description="per-term multiplier; terms not listed use 1.0",
    )

    @field_validator("terms")
    @classmethod
    def _unique_terms(cls, terms: list[str]) -> list[str]:
        dupes = sorted({t for t in terms if terms.count(t) > 1})
        if dupes:
            raise ValueError(f"terms: duplicate terms {dupes}")
        return terms

    @field_validator("scales")
    @classmethod
    def _finite_scales(cls, scales: dict[str, float]) -> dict[str, float]:
        for term, scale in scales.items():
            if not np.isfinite(scale) or scale == 0.0:
                raise ValueError(f"scales[{term!r}] must be finite and non-zero, got {scale}")
        return scales


class ObservationBuilder:
    """Assembles observations for one robot; ``layout`` lists (term, start, end) slices of the vector.

    ``low``/``high`` bound every (scaled) component; ``build`` clips to them (see TERM_RANGE).
    """

    def __init__(self, config: ObservationConfig, description: RobotDescription, action_dim: int) -> None:
        if action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        self.config = config
        self.description = description
        self.action_dim = action_dim
        self._home = description.array("home")
        self._n_joints = len(description.joints)
        self._n_feet = len(description.feet)
        if "foot_contact" in config.terms and self._n_feet == 0:
            raise ObservationError(f"term 'foot_contact': robot {description.name!r} lists no feet")
        self.layout: list[tuple[str, int, int]] = []
        lows: list[np.ndarray] = []
        highs: list[np.ndarray] = []
        start = 0
        for term in config.terms:
            end = start + self._term_size(term)
            self.layout.append((term, start, end))
            low, high = self._term_range(term, end - start)
            bounds = np.sort(np.stack([low, high]) * config.scales.get(term, 1.0), axis=0)
            lows.append(bounds[0])
            highs.append(bounds[1])
            start = end
        self.size = start
        self.low = np.concatenate(lows).astype(np.float32)
        self.high = np.concatenate(highs).astype(np.float32)

    def _term_size(self, term: str) -> int:
        if term in ("joint_position", "joint_velocity"):
            return self._n_joints
        if term == "foot_contact":
            return self._n_feet
        if term == "previous_action":
            return self.action_dim
        return 3

    def _term_range(self, term: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        if term == "joint_position":
            lower = self.description.array("lower") - self._home - JOINT_POSITION_MARGIN
            upper = self.description.array("upper") - self._home + JOINT_POSITION_MARGIN
            return lower, upper
        if term == "foot_contact":
            return np.zeros(size), np.ones(size)
        bound = np.full(size, TERM_RANGE[term])
        return -bound, bound

    def _term_value(self, term: str, state: RobotState, previous_action: np.ndarray) -> np.ndarray:
        if term in OPTIONAL_STATE_FIELD and getattr(state, OPTIONAL_STATE_FIELD[term]) is None:
            raise ObservationError(
                f"observation term {term!r} needs state.{OPTIONAL_STATE_FIELD[term]}, which this robot does not "
                f"provide; remove {term!r} from the observation terms or provide it"
            )
        if term == "joint_position":
            return np.asarray(state.joint_position, dtype=np.float64) - self._home
        if term == "joint_velocity":
            return np.asarray(state.joint_velocity, dtype=np.float64)
        if term == "gravity":
            return gravity_in_body(state.imu_orientation)
        if term == "angular_velocity":
            return np.asarray(state.imu_angular_velocity, dtype=np.float64)
        if term == "linear_acceleration":
            return np.asarray(state.imu_linear_acceleration, dtype=np.float64)
        if term == "base_linear_velocity":
            return np.asarray(state.base_linear_velocity, dtype=np.float64)
        if term == "foot_contact":
            return np.asarray(state.foot_contact, dtype=np.float64)
        return np.asarray(previous_action, dtype=np.float64)

    def build(self, state: RobotState, previous_action: np.ndarray) -> np.ndarray:
        """The observation vector (float32, length ``size``) for one state and the action before it."""
        previous_action = np.asarray(previous_action, dtype=np.float64)
        if previous_action.shape != (self.action_dim,):
            raise ValueError(f"previous_action must have shape ({self.action_dim},), got {previous_action.shape}")
        out = np.empty(self.size, dtype=np.float32)
        for term, start, end in self.layout:
            value = self._term_value(term, state, previous_action).reshape(-1)
            if value.shape[0] != end - start:
                raise ObservationError(f"observation term {term!r} has {value.shape[0]} values, expected {end - start}")
            out[start:end] = value * self.config.scales.get(term, 1.0)
        return np.clip(out, self.low, self.high)
