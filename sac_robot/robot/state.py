# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""One snapshot of what a robot's sensors say, independent of where it came from.

The collector fills it from ROS topics, the in-process environments from the simulator;
observation assembly, rewards, terminations and the safety layer all read this one type,
so the learner never knows which robot it drives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RobotState:
    """Sensor snapshot in the configured joint order (SI units, ROS conventions)."""

    joint_position: np.ndarray  # rad, shape (J,)
    joint_velocity: np.ndarray  # rad/s, shape (J,)
    joint_effort: np.ndarray  # N·m, shape (J,)
    imu_orientation: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))  # x, y, z, w
    imu_angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))  # rad/s, body frame
    imu_linear_acceleration: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 9.81]))  # m/s², body
    base_linear_velocity: np.ndarray | None = None  # m/s in the body frame (odometry), optional
    base_position: np.ndarray | None = None  # m in the world/odom frame, optional
    foot_contact: np.ndarray | None = None  # 1.0 in contact, 0.0 not, shape (F,), optional
    scan: np.ndarray | None = None  # range finder readings, m (sensor_msgs/LaserScan ranges), optional
    stamp: float = 0.0  # seconds of the newest sensor message used

    def roll_pitch(self) -> tuple[float, float]:
        """Roll and pitch (rad) of the IMU orientation: what fall detection and upright rewards use."""
        return quaternion_roll_pitch(self.imu_orientation)

    def is_finite(self) -> bool:
        """True when every present field is finite: a NaN anywhere must never reach a command."""
        arrays = [
            self.joint_position,
            self.joint_velocity,
            self.joint_effort,
            self.imu_orientation,
            self.imu_angular_velocity,
            self.imu_linear_acceleration,
        ]
        optional = (self.base_linear_velocity, self.base_position, self.foot_contact, self.scan)
        arrays += [a for a in optional if a is not None]
        # One vectorised check over every field (this runs on every control step, on the critical path).
        return bool(np.isfinite(np.concatenate(arrays)).all()) and math.isfinite(self.stamp)


def quaternion_roll_pitch(q: np.ndarray) -> tuple[float, float]:
    """Roll and pitch from an (x, y, z, w) quaternion (ZYX Euler convention, as tf2 uses)."""
    x, y, z, w = (float(v) for v in q)
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    sin_pitch = max(-1.0, min(1.0, 2.0 * (w * y - z * x)))
    return roll, math.asin(sin_pitch)


def gravity_in_body(q: np.ndarray) -> np.ndarray:
    """Unit gravity direction in the body frame: a smooth, wrap-free tilt feature for observations."""
    x, y, z, w = (float(v) for v in q)
    # Third row of the rotation matrix body->world, negated: world -z expressed in the body frame.
    return -np.array([2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)])
