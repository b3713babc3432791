# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""BipedalWalker's observation, taken apart into robot signals and put back together.

The stand-in turns the environment's 24-number observation into what a robot would publish
(joint states, IMU, odometry, lidar, foot contacts); the collector rebuilds the same 24 numbers
from those messages. Both directions live here so the scalings cannot drift apart. Box2D's plane
(x forward, y up) maps to ROS's x forward, z up: the hull angle is a rotation about −y (pitch).
"""

from __future__ import annotations

import math

import numpy as np

from sac_robot.robot.state import RobotState

FPS = 50.0
SCALE = 30.0
VIEWPORT_W, VIEWPORT_H = 600.0, 400.0
SPEED_HIP, SPEED_KNEE = 4.0, 6.0
MOTORS_TORQUE = 80.0
LIDAR_RANGE = 160.0 / SCALE
LIDAR_RAYS = 10
VX_SCALE = 0.3 * (VIEWPORT_W / SCALE) / FPS
VY_SCALE = 0.3 * (VIEWPORT_H / SCALE) / FPS
JOINT_NAMES = ["hip_1", "knee_1", "hip_2", "knee_2"]
FOOT_NAMES = ["foot_1", "foot_2"]
OBS_DIM = 24
LAYOUT = [
    ("hull_angle", 0, 1),
    ("hull_angular_velocity", 1, 2),
    ("velocity", 2, 4),
    ("leg_1", 4, 9),
    ("leg_2", 9, 14),
    ("lidar", 14, 24),
]


def obs_to_state(obs: np.ndarray, effort: np.ndarray, stamp: float) -> RobotState:
    """The environment's observation as the signals a robot's drivers would publish."""
    o = np.asarray(obs, dtype=np.float64)
    pitch = -o[0]
    return RobotState(
        joint_position=np.array([o[4], o[6] - 1.0, o[9], o[11] - 1.0]),
        joint_velocity=np.array([o[5] * SPEED_HIP, o[7] * SPEED_KNEE, o[10] * SPEED_HIP, o[12] * SPEED_KNEE]),
        joint_effort=np.asarray(effort, dtype=np.float64),
        imu_orientation=np.array([0.0, math.sin(pitch / 2.0), 0.0, math.cos(pitch / 2.0)]),
        imu_angular_velocity=np.array([0.0, -o[1] * FPS / 2.0, 0.0]),
        imu_linear_acceleration=np.array([0.0, 0.0, 9.81]),
        base_linear_velocity=np.array([o[2] / VX_SCALE, 0.0, o[3] / VY_SCALE]),
        foot_contact=np.array([o[8], o[13]]),
        scan=o[14 : 14 + LIDAR_RAYS] * LIDAR_RANGE,
        stamp=stamp,
    )


def state_to_obs(state: RobotState) -> np.ndarray:
    """Rebuild the 24-number observation from robot signals (inverse of obs_to_state)."""
    if state.base_linear_velocity is None or state.foot_contact is None or state.scan is None:
        raise ValueError("BipedalWalker observation needs odom, foot_contacts and scan")
    if len(state.scan) != 10 or len(state.foot_contact) != 2 or len(state.joint_position) != 4:
        raise ValueError("BipedalWalker observation needs 4 joints, 2 feet and 10 lidar ranges")
    _, qy, _, qw = (float(x) for x in state.imu_orientation)
    pitch = 2.0 * math.atan2(qy, qw)  # exact for a pure pitch rotation, any angle
    # Plain floats, one array at the end: this runs on every control step of the lockstep path.
    q, dq = np.asarray(state.joint_position).tolist(), np.asarray(state.joint_velocity).tolist()
    v, c = np.asarray(state.base_linear_velocity).tolist(), np.asarray(state.foot_contact).tolist()
    head = [
        -pitch,
        -float(state.imu_angular_velocity[1]) * 2.0 / FPS,
        v[0] * VX_SCALE,
        v[2] * VY_SCALE,
        q[0], dq[0] / SPEED_HIP, q[1] + 1.0, dq[1] / SPEED_KNEE, c[0],
        q[2], dq[2] / SPEED_HIP, q[3] + 1.0, dq[3] / SPEED_KNEE, c[1],
    ]  # fmt: skip
    return np.array(head + (np.asarray(state.scan, dtype=np.float64) / LIDAR_RANGE).tolist(), dtype=np.float32)


class WalkerObservation:
    """Observation builder with ObservationBuilder's interface, for the BipedalWalker stand-in."""

    size = OBS_DIM
    layout = LAYOUT
    needs = ("joint_states", "imu", "odom", "foot_contacts", "scan")

    def build(self, state: RobotState, previous_action: np.ndarray) -> np.ndarray:
        return state_to_obs(state)
