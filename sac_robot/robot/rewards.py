# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Locomotion reward computed from a RobotState, identical in simulation and on hardware.

The forward term follows walk_in_the_park (Smith et al., 2022): full reward while the pitch-corrected
forward speed lies in [target, 2·target], falling linearly to zero over a margin of 2·target on either
side, times 10; standing still earns half of it. ``speed_margin`` narrows that margin: at 1 (in units of
target) a standstill earns nothing, which keeps a policy from settling for standing (our quadruped did). The other terms are optional shaping, off or small by default, each
reported separately so that training logs show which one dominates.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sac_robot.robot.description import RobotDescription
from sac_robot.robot.state import RobotState, gravity_in_body


class RewardConfig(BaseModel):
    """Weights of the reward terms; a weight of 0 disables the term (and its sensor requirement)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_speed: float = Field(default=0.5, gt=0.0, description="forward speed to reach, m/s")
    forward_velocity: float = Field(default=10.0, ge=0.0, description="weight of the [0, 1] speed-tracking term")
    speed_margin: float = Field(
        default=2.0, gt=0.0, description="slope width either side of [target, 2·target], in units of target_speed"
    )
    yaw_rate: float = Field(default=1.0, ge=0.0, description="penalty per rad/s of yaw rate (keeps it straight)")
    upright: float = Field(default=1.0, ge=0.0, description="weight of ((1 + cos tilt) / 2)², in [0, 1]")
    height: float = Field(default=0.0, ge=0.0, description="weight of base height relative to base_height, [0, 1]")
    effort: float = Field(default=1e-4, ge=0.0, description="penalty per (N·m)² of joint torque")
    action_rate: float = Field(default=0.05, ge=0.0, description="penalty per squared change of action")
    alive: float = Field(default=0.0, ge=0.0, description="bonus per step while not fallen")
    fall_penalty: float = Field(default=10.0, ge=0.0, description="one-off penalty on the step that falls")


def forward_velocity_reward(velocity: float, target_speed: float, margin: float = 2.0) -> float:
    """walk_in_the_park's tolerance: 1 in [target, 2·target], linear to 0 over margin·target either side."""
    low, high, margin = target_speed, 2.0 * target_speed, margin * target_speed
    if velocity < low:
        distance = low - velocity
    elif velocity > high:
        distance = velocity - high
    else:
        return 1.0
    return max(0.0, 1.0 - distance / margin)


def compute_reward(
    config: RewardConfig,
    description: RobotDescription,
    state: RobotState,
    action: np.ndarray,
    previous_action: np.ndarray,
    fell: bool,
) -> tuple[float, dict[str, float]]:
    """Total reward and its weighted terms (which sum to the total) for one control step."""
    terms: dict[str, float] = {}
    _, pitch = state.roll_pitch()

    if config.forward_velocity > 0.0:
        if state.base_linear_velocity is None:
            raise ValueError("reward term 'forward_velocity' needs state.base_linear_velocity (a velocity estimate)")
        forward = math.cos(pitch) * float(state.base_linear_velocity[0])
        terms["forward_velocity"] = config.forward_velocity * forward_velocity_reward(
            forward, config.target_speed, config.speed_margin
        )
    else:
        terms["forward_velocity"] = 0.0

    terms["yaw_rate"] = -config.yaw_rate * abs(float(state.imu_angular_velocity[2]))

    cos_tilt = float(-gravity_in_body(state.imu_orientation)[2])
    terms["upright"] = config.upright * (0.5 * cos_tilt + 0.5) ** 2

    if config.height > 0.0:
        if state.base_position is None:
            raise ValueError("reward term 'height' needs state.base_position")
        error = (description.base_height - float(state.base_position[2])) / description.base_height
        terms["height"] = config.height * (1.0 - float(np.clip(error, 0.0, 1.0)))
    else:
        terms["height"] = 0.0

    effort = np.asarray(state.joint_effort, dtype=np.float64)
    terms["effort"] = -config.effort * float(np.sum(effort * effort))
    change = np.asarray(action, dtype=np.float64) - np.asarray(previous_action, dtype=np.float64)
    terms["action_rate"] = -config.action_rate * float(np.sum(change * change))
    terms["alive"] = 0.0 if fell else config.alive
    terms["fall"] = -config.fall_penalty if fell else 0.0
    return float(sum(terms.values())), terms
