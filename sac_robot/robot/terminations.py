# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Fall detection: when an episode must end because the robot is no longer upright.

On the real robot a detected fall triggers the reset routine and stops learning updates from
counting the fall as a normal transition, so it must work from IMU data alone; the height check
is optional because only some robots know their base height.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from sac_robot.robot.state import RobotState


class TerminationConfig(BaseModel):
    """Tilt limits (rad) beyond which the robot counts as fallen; walk_in_the_park uses 30°."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_roll: float = Field(default=math.radians(30.0), gt=0.0, le=math.pi)
    max_pitch: float = Field(default=math.radians(30.0), gt=0.0, le=math.pi / 2)
    min_base_height: float | None = Field(default=None, description="m; needs state.base_position when set")


def check_fall(config: TerminationConfig, state: RobotState) -> str | None:
    """The reason the robot has fallen (for logs and the reset routine), or None while it is upright."""
    if not state.is_finite():
        return "state contains non-finite values"
    roll, pitch = state.roll_pitch()
    if abs(roll) > config.max_roll:
        return f"roll {roll:.3f} rad exceeds max_roll {config.max_roll:.3f} rad"
    if abs(pitch) > config.max_pitch:
        return f"pitch {pitch:.3f} rad exceeds max_pitch {config.max_pitch:.3f} rad"
    if config.min_base_height is not None:
        if state.base_position is None:
            raise ValueError("min_base_height is set but the state has no base_position")
        height = float(state.base_position[2])
        if height < config.min_base_height:
            return f"base height {height:.3f} m is below min_base_height {config.min_base_height:.3f} m"
    return None
