# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The robot as data: joint order, home pose, limits, gains, IMU link and feet.

A robot is described by a YAML file (config/robots/<name>.yaml), never by code, so that a URDF we
did not write works without code changes. Validation names the bad key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sac_robot.core.config import package_share


class JointSpec(BaseModel):
    """One actuated joint; limits are the hardware's, the safety layer never exceeds them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    home: float = Field(description="standing pose angle, rad")
    lower: float = Field(description="position lower limit, rad")
    upper: float = Field(description="position upper limit, rad")
    velocity: float = Field(gt=0, description="velocity limit, rad/s")
    effort: float = Field(gt=0, description="effort limit, N·m")
    kp: float = Field(default=20.0, ge=0, description="PD stiffness used by position control, N·m/rad")
    kd: float = Field(default=0.5, ge=0, description="PD damping, N·m·s/rad")

    @model_validator(mode="after")
    def _check_limits(self) -> JointSpec:
        if not self.lower < self.upper:
            raise ValueError(f"joint {self.name!r}: lower ({self.lower}) must be below upper ({self.upper})")
        if not self.lower <= self.home <= self.upper:
            raise ValueError(f"joint {self.name!r}: home ({self.home}) lies outside [{self.lower}, {self.upper}]")
        return self


class RobotDescription(BaseModel):
    """Everything the stack needs to know about a robot besides its URDF's geometry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    urdf: str | None = Field(
        default=None, description="URDF path, absolute or relative to the package's urdf/ folder (None: no URDF)"
    )
    base_link: str
    imu_link: str
    feet: list[str] = Field(default_factory=list, description="foot link names, in contact-array order")
    joints: list[JointSpec] = Field(min_length=1)
    base_height: float = Field(default=0.3, gt=0, description="nominal standing height of base_link, m")

    @model_validator(mode="after")
    def _unique_names(self) -> RobotDescription:
        names = [j.name for j in self.joints]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"joints: duplicate joint names {dupes}")
        return self

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]

    def array(self, attr: str) -> np.ndarray:
        """Per-joint attribute as a float64 array in joint order (e.g. ``array('upper')``)."""
        return np.array([getattr(j, attr) for j in self.joints], dtype=np.float64)

    def urdf_path(self) -> Path:
        if self.urdf is None:
            raise FileNotFoundError(f"robot {self.name!r} has no URDF")
        path = Path(self.urdf)
        return path if path.is_absolute() else package_share() / "urdf" / path


def load_robot(name_or_path: str | Path) -> RobotDescription:
    """Load a robot description by packaged name (``quadruped``) or by YAML path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = package_share() / "config" / "robots" / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"robot description not found: {path}")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return RobotDescription.model_validate(data)
