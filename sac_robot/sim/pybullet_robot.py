# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""A robot description simulated in PyBullet, reporting the same RobotState a real robot does.

Everything above this layer (observations, rewards, safety, the learner) only sees ``RobotState``
and joint-ordered command arrays, so the simulator must produce what real sensors produce: an IMU
on ``imu_link`` whose accelerometer reads +9.81 m/s² up at rest, applied torques clipped to the
motors' limits, and configurable sensor noise, bias, dropouts and latency. Each instance owns its
own DIRECT-mode physics client, so many can run side by side in one process.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace
from typing import Literal, Self

import numpy as np
import pybullet
import pybullet_data
from pybullet_utils import bullet_client
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sac_robot.robot.description import RobotDescription
from sac_robot.robot.state import RobotState

GRAVITY = 9.81
ControlMode = Literal["position", "effort"]
NoisyField = Literal[
    "joint_position",
    "joint_velocity",
    "joint_effort",
    "imu_orientation",
    "imu_angular_velocity",
    "imu_linear_acceleration",
    "base_linear_velocity",
    "base_position",
]
# Readings that arrive together on a real robot (one ROS message each) are dropped together.
SENSOR_GROUPS: dict[str, tuple[str, ...]] = {
    "joints": ("joint_position", "joint_velocity", "joint_effort"),
    "imu": ("imu_orientation", "imu_angular_velocity", "imu_linear_acceleration"),
    "odometry": ("base_linear_velocity", "base_position"),
    "contacts": ("foot_contact",),
}


class SensorNoise(BaseModel):
    """Sensor imperfections, so policies trained in simulation meet what real sensors deliver.

    ``std`` is the per-component gaussian standard deviation of each field (for ``imu_orientation``,
    radians of a random body-frame rotation); ``bias`` a constant offset added to every component;
    ``dropout`` the probability that a sensor group (joints, imu, odometry, contacts) repeats its
    previous reading; ``latency_steps`` how many physics steps old every reading is.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    std: dict[NoisyField, float] = Field(default_factory=dict)
    bias: dict[NoisyField, float] = Field(default_factory=dict)
    dropout: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_steps: int = Field(default=0, ge=0)

    @field_validator("std")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for name, std in value.items():
            if not (math.isfinite(std) and std >= 0.0):
                raise ValueError(f"std[{name!r}] must be finite and >= 0, got {std}")
        return value

    @field_validator("bias")
    @classmethod
    def _bias_fields(cls, value: dict[str, float]) -> dict[str, float]:
        if "imu_orientation" in value:
            raise ValueError("bias['imu_orientation'] is not supported: a fixed mounting error belongs in the URDF")
        for name, bias in value.items():
            if not math.isfinite(bias):
                raise ValueError(f"bias[{name!r}] must be finite, got {bias}")
        return value

    @property
    def is_ideal(self) -> bool:
        return not any(self.std.values()) and not any(self.bias.values()) and self.dropout == 0.0


def _quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (x, y, z, w) quaternions."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def _rotvec_quat(v: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    axis = v / angle
    return np.concatenate([axis * math.sin(angle / 2.0), [math.cos(angle / 2.0)]])


class PyBulletRobot:
    """PyBullet simulation of one RobotDescription on a flat plane, stepped at a fixed physics rate."""

    def __init__(
        self,
        description: RobotDescription,
        physics_hz: float = 500.0,
        control_mode: ControlMode = "position",
        sensor_noise: SensorNoise | None = None,
        seed: int | None = None,
        ground_friction: float = 1.0,
        contact_distance: float = 2e-3,
        fixed_base: bool = False,
    ) -> None:
        if physics_hz <= 0:
            raise ValueError(f"physics_hz must be positive, got {physics_hz}")
        if control_mode not in ("position", "effort"):
            raise ValueError(f"control_mode must be 'position' or 'effort', got {control_mode!r}")
        self.description = description
        self.physics_hz = float(physics_hz)
        self.dt = 1.0 / self.physics_hz
        self.control_mode: ControlMode = control_mode
        self.sensor_noise = sensor_noise if sensor_noise is not None else SensorNoise()
        self.contact_distance = contact_distance
        self._rng = np.random.default_rng(seed)

        self._kp = description.array("kp")
        self._kd = description.array("kd")
        self._effort = description.array("effort")
        self._lower = description.array("lower")
        self._upper = description.array("upper")
        self._home = description.array("home")
        self._n = len(description.joints)

        self._bc: bullet_client.BulletClient | None = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self._urdf = description.urdf_path()
        if not self._urdf.is_file():
            raise FileNotFoundError(f"robot {description.name!r}: URDF not found at {self._urdf}")
        self.ground_friction = ground_friction
        # fixed_base hangs the robot on a virtual stand, as real robots are first tested on a gantry.
        self.fixed_base = fixed_base
        self._load_world()
        bc = self._bc
        urdf = self._urdf

        joint_index: dict[str, int] = {}
        link_index: dict[str, int] = {bc.getBodyInfo(self.body_id)[0].decode(): -1}
        for i in range(bc.getNumJoints(self.body_id)):
            info = bc.getJointInfo(self.body_id, i)
            joint_index[info[1].decode()] = i
            link_index[info[12].decode()] = i
        missing = [name for name in description.joint_names if name not in joint_index]
        if missing:
            raise ValueError(f"robot {description.name!r}: joints {missing} are not in {urdf}")
        for role, name in [("base_link", description.base_link), ("imu_link", description.imu_link)] + [
            ("foot", f) for f in description.feet
        ]:
            if name not in link_index:
                raise ValueError(f"robot {description.name!r}: {role} {name!r} is not a link of {urdf}")
        if link_index[description.base_link] != -1:
            raise ValueError(f"robot {description.name!r}: base_link {description.base_link!r} is not the URDF root")
        self._joint_ids = [joint_index[name] for name in description.joint_names]
        self._imu_id = link_index[description.imu_link]
        self._foot_ids = [link_index[name] for name in description.feet]

        self._step_count = 0
        self._target = self._home.copy()
        self._command = np.zeros(self._n)
        self._torque = np.zeros(self._n)
        self._safe = False
        self._push_force = np.zeros(3)
        self._push_steps = 0
        self._prev_imu_velocity: np.ndarray | None = None
        self._history: deque[RobotState] = deque(maxlen=self.sensor_noise.latency_steps + 1)
        self._reading: RobotState | None = None
        self._reading_step = -1
        self.reset()

    # ------------------------------------------------------------------ lifecycle

    @property
    def client(self) -> bullet_client.BulletClient:
        if self._bc is None:
            raise RuntimeError("PyBulletRobot is closed")
        return self._bc

    @property
    def sim_time(self) -> float:
        """Seconds of simulated time since the last reset."""
        return self._step_count * self.dt

    @property
    def in_safe_mode(self) -> bool:
        return self._safe

    @property
    def home(self) -> np.ndarray:
        return self._home.copy()

    def close(self) -> None:
        """Disconnect this instance's physics client (idempotent)."""
        if self._bc is not None:
            self._bc.disconnect()
            self._bc = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(
        self,
        seed: int | None = None,
        pose: np.ndarray | None = None,
        base_position: np.ndarray | None = None,
        base_orientation: np.ndarray | None = None,
    ) -> RobotState:
        """Place the robot at rest in ``pose`` (default home) on the plane and return the first reading.

        Without ``base_position`` the robot is centred at the origin with its lowest point touching the
        ground, so any pose and orientation (standing, lying on its side) starts in contact without
        penetrating. Position control then holds ``pose``. Safe mode is cleared.
        """
        bc = self.client
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        pose = self._home.copy() if pose is None else self._checked_pose(pose)
        orientation = (
            np.array([0.0, 0.0, 0.0, 1.0]) if base_orientation is None else np.asarray(base_orientation, float)
        )
        if orientation.shape != (4,) or not np.all(np.isfinite(orientation)) or np.linalg.norm(orientation) < 1e-9:
            raise ValueError(f"base_orientation must be a finite (x, y, z, w) quaternion, got {base_orientation}")
        orientation = orientation / np.linalg.norm(orientation)

        self._load_world()
        for joint_id, angle in zip(self._joint_ids, pose, strict=True):
            bc.resetJointState(self.body_id, joint_id, float(angle), 0.0)
        bc.setJointMotorControlArray(
            self.body_id, self._joint_ids, pybullet.VELOCITY_CONTROL, forces=[0.0] * self._n
        )  # PyBullet's default motors would otherwise fight our torques
        if base_position is None:
            bc.resetBasePositionAndOrientation(self.body_id, [0.0, 0.0, 0.0], orientation.tolist())
            lowest = min(bc.getAABB(self.body_id, link)[0][2] for link in range(-1, bc.getNumJoints(self.body_id)))
            position = np.array([0.0, 0.0, -lowest])
        else:
            position = np.asarray(base_position, dtype=float)
            if position.shape != (3,) or not np.all(np.isfinite(position)):
                raise ValueError(f"base_position must be three finite numbers, got {base_position}")
        bc.resetBasePositionAndOrientation(self.body_id, position.tolist(), orientation.tolist())
        bc.resetBaseVelocity(self.body_id, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
        bc.performCollisionDetection()

        self._step_count = 0
        self._target = pose.copy()
        self._command = np.zeros(self._n)
        self._torque = np.zeros(self._n)
        self._safe = False
        self._push_steps = 0
        self._push_force = np.zeros(3)
        self._history = deque(maxlen=self.sensor_noise.latency_steps + 1)
        self._prev_imu_velocity = None
        self._true = self._sample()
        self._history.append(self._true)
        self._reading = None
        self._reading_step = -1
        return self.state()

    def _load_world(self) -> None:
        """Build the world from scratch: restoring a saved state keeps stale contact caches, so equal seeds
        would not give equal rollouts; rebuilding costs a few milliseconds per episode."""
        bc = self.client
        bc.resetSimulation()
        bc.setAdditionalSearchPath(pybullet_data.getDataPath())
        bc.setGravity(0.0, 0.0, -GRAVITY)
        bc.setTimeStep(self.dt)
        bc.setPhysicsEngineParameter(numSubSteps=0, deterministicOverlappingPairs=1)
        self.plane_id = bc.loadURDF("plane.urdf")
        bc.changeDynamics(self.plane_id, -1, lateralFriction=self.ground_friction)
        self.body_id = bc.loadURDF(
            str(self._urdf), useFixedBase=self.fixed_base, flags=pybullet.URDF_USE_INERTIA_FROM_FILE
        )

    def _checked_pose(self, pose: np.ndarray) -> np.ndarray:
        pose = np.asarray(pose, dtype=float)
        if pose.shape != (self._n,) or not np.all(np.isfinite(pose)):
            raise ValueError(f"pose must be {self._n} finite joint angles, got shape {pose.shape}")
        bad = [
            name
            for name, q, lo, hi in zip(self.description.joint_names, pose, self._lower, self._upper, strict=True)
            if not lo - 1e-9 <= q <= hi + 1e-9
        ]
        if bad:
            raise ValueError(f"pose is outside the joint limits of {bad}")
        return pose.copy()

    # ------------------------------------------------------------------ commands

    def set_command(self, command: np.ndarray) -> None:
        """Joint-ordered targets: angles (rad, clipped to limits) in position mode, torques (N·m) in effort mode."""
        command = np.asarray(command, dtype=float)
        if command.shape != (self._n,):
            raise ValueError(f"command must have shape ({self._n},), got {command.shape}")
        if not np.all(np.isfinite(command)):
            raise ValueError("command contains non-finite values")
        if self.control_mode == "position":
            self._target = np.clip(command, self._lower, self._upper)
        else:
            self._command = command.copy()

    def safe_mode(self) -> None:
        """Latch pure joint damping (tau = -kd·qd): what a released deadman does until ``resume()`` or reset."""
        self._safe = True

    def resume(self) -> None:
        """Leave safe mode; commands given meanwhile take effect again."""
        self._safe = False

    def push(self, force: np.ndarray, duration_steps: int) -> None:
        """Apply a world-frame force (N) at the base's centre of mass for the next physics steps (disturbance)."""
        force = np.asarray(force, dtype=float)
        if force.shape != (3,) or not np.all(np.isfinite(force)):
            raise ValueError(f"force must be three finite numbers, got {force}")
        if duration_steps < 0:
            raise ValueError(f"duration_steps must be >= 0, got {duration_steps}")
        self._push_force = force
        self._push_steps = int(duration_steps)

    def _torques(self) -> np.ndarray:
        q, qd = self._true.joint_position, self._true.joint_velocity
        if self._safe:
            tau = -self._kd * qd
        elif self.control_mode == "position":
            tau = self._kp * (self._target - q) - self._kd * qd
        else:
            tau = self._command
        return np.clip(tau, -self._effort, self._effort)

    def step(self, n_substeps: int = 1) -> None:
        """Advance ``n_substeps`` physics steps, recomputing the PD torques at every one (as motor drivers do)."""
        if n_substeps < 1:
            raise ValueError(f"n_substeps must be >= 1, got {n_substeps}")
        bc = self.client
        for _ in range(n_substeps):
            self._torque = self._torques()
            bc.setJointMotorControlArray(
                self.body_id, self._joint_ids, pybullet.TORQUE_CONTROL, forces=self._torque.tolist()
            )
            if self._push_steps > 0:
                com_position = bc.getBasePositionAndOrientation(self.body_id)[0]
                bc.applyExternalForce(self.body_id, -1, self._push_force.tolist(), com_position, pybullet.WORLD_FRAME)
                self._push_steps -= 1
            bc.stepSimulation()
            self._step_count += 1
            self._true = self._sample()
            self._history.append(self._true)

    # ------------------------------------------------------------------ sensing

    def _sample(self) -> RobotState:
        """True sensor values right now; the accelerometer differentiates the IMU link's world velocity."""
        bc = self.client
        joints = bc.getJointStates(self.body_id, self._joint_ids)
        q = np.array([j[0] for j in joints])
        qd = np.array([j[1] for j in joints])

        if self._imu_id == -1:
            _, imu_orn = bc.getBasePositionAndOrientation(self.body_id)
            imu_lin, imu_ang = bc.getBaseVelocity(self.body_id)
        else:
            link = bc.getLinkState(self.body_id, self._imu_id, computeLinkVelocity=1)
            imu_orn, imu_lin, imu_ang = link[5], link[6], link[7]
        imu_orn = np.array(imu_orn)
        rot = np.array(bc.getMatrixFromQuaternion(imu_orn.tolist())).reshape(3, 3)  # body -> world
        imu_lin = np.array(imu_lin)
        prev = self._prev_imu_velocity
        accel_world = np.zeros(3) if prev is None else (imu_lin - prev) / self.dt
        self._prev_imu_velocity = imu_lin
        specific_force = rot.T @ (accel_world + np.array([0.0, 0.0, GRAVITY]))

        com_pos, com_orn = bc.getBasePositionAndOrientation(self.body_id)
        inertial_pos, inertial_orn = bc.getDynamicsInfo(self.body_id, -1)[3:5]
        base_pos, base_orn = bc.multiplyTransforms(com_pos, com_orn, *bc.invertTransform(inertial_pos, inertial_orn))
        base_rot = np.array(bc.getMatrixFromQuaternion(base_orn)).reshape(3, 3)
        base_lin = np.array(bc.getBaseVelocity(self.body_id)[0])

        # Closest points, not the solver's contact manifold: a sphere resting exactly on the plane has no
        # manifold point until it penetrates, but a real foot switch reads "pressed" as soon as it touches.
        touching = {c[3] for c in bc.getClosestPoints(self.body_id, self.plane_id, self.contact_distance)}
        contacts = np.array([1.0 if foot in touching else 0.0 for foot in self._foot_ids])
        return RobotState(
            joint_position=q,
            joint_velocity=qd,
            joint_effort=self._torque.copy(),
            imu_orientation=imu_orn,
            imu_angular_velocity=rot.T @ np.array(imu_ang),
            imu_linear_acceleration=specific_force,
            base_linear_velocity=base_rot.T @ base_lin,
            base_position=np.array(base_pos),
            foot_contact=contacts,
            stamp=self.sim_time,
        )

    def true_state(self) -> RobotState:
        """Noise-free, latency-free state: for tests and evaluation, never for the policy."""
        return _copy_state(self._true)

    def state(self) -> RobotState:
        """The sensor reading now: delayed by ``latency_steps``, with noise, bias and dropouts applied.

        Repeated calls at the same simulation step return the same reading.
        """
        if self._reading is None or self._reading_step != self._step_count:
            self._reading = self._corrupt(self._history[0], self._reading)
            self._reading_step = self._step_count
        return _copy_state(self._reading)

    def _corrupt(self, true: RobotState, previous: RobotState | None) -> RobotState:
        noise = self.sensor_noise
        if noise.is_ideal:
            return _copy_state(true)
        values: dict[str, np.ndarray] = {}
        for name in NoisyField.__args__:  # fixed order keeps seeded runs reproducible
            value = np.array(getattr(true, name), dtype=float)
            std = noise.std.get(name, 0.0)
            if name == "imu_orientation":
                if std > 0.0:
                    value = _quat_multiply(value, _rotvec_quat(self._rng.normal(0.0, std, 3)))
                    value /= np.linalg.norm(value)
            else:
                if std > 0.0:
                    value = value + self._rng.normal(0.0, std, value.shape)
                value = value + noise.bias.get(name, 0.0)
            values[name] = value
        values["foot_contact"] = np.array(true.foot_contact)
        if noise.dropout > 0.0 and previous is not None:
            for group in SENSOR_GROUPS.values():
                if self._rng.random() < noise.dropout:
                    for name in group:
                        values[name] = np.array(getattr(previous, name))
        return replace(true, **values)

    # ------------------------------------------------------------------ rendering

    def render(self, width: int = 320, height: int = 240) -> np.ndarray:
        """RGB image (height, width, 3) uint8 from a camera that follows the base; CPU-only TINY renderer."""
        bc = self.client
        target = bc.getBasePositionAndOrientation(self.body_id)[0]
        distance = 1.0 + 1.5 * self.description.base_height
        view = bc.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=target, distance=distance, yaw=30.0, pitch=-20.0, roll=0.0, upAxisIndex=2
        )
        projection = bc.computeProjectionMatrixFOV(fov=60.0, aspect=width / height, nearVal=0.01, farVal=50.0)
        _, _, rgba, _, _ = bc.getCameraImage(
            width, height, viewMatrix=view, projectionMatrix=projection, renderer=pybullet.ER_TINY_RENDERER
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()


def _copy_state(state: RobotState) -> RobotState:
    """Deep-enough copy so callers can modify arrays without touching the simulator's history."""
    copies = {
        name: (None if getattr(state, name) is None else np.array(getattr(state, name), dtype=float))
        for name in (
            "joint_position",
            "joint_velocity",
            "joint_effort",
            "imu_orientation",
            "imu_angular_velocity",
            "imu_linear_acceleration",
            "base_linear_velocity",
            "base_position",
            "foot_contact",
        )
    }
    return replace(state, **copies)
