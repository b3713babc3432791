# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""ROS message ↔ robot-layer conversions and the QoS of every topic in the contract (docs/topics.md).

Conversions validate what arrives: wrong joint names, wrong array lengths and non-finite values
raise MessageError with a reason the node logs and counts; nothing malformed reaches the layers below.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Vector3Stamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, JointState, LaserScan

from sac_robot.nodes import cdr, cdr_writers
from sac_robot.robot.state import RobotState

# Robot topics (relative: a robot's namespace applies).
JOINT_STATES, IMU, ODOM, SCAN, FOOT_CONTACTS = "joint_states", "imu/data", "odom", "scan", "foot_contacts"
JOINT_COMMANDS, RESET, PRIVILEGED, ESTOP, RESUME = (
    "joint_commands",
    "reset",
    "privileged/step",
    "sac_robot/estop",
    "sac_robot/resume",
)
# Learner topics (absolute: every namespaced collector reaches the one learner).
TRANSITIONS, ACK, POLICY, EPISODES = (
    "/sac_robot/transitions",
    "/sac_robot/ack",
    "/sac_robot/policy",
    "/sac_robot/episodes",
)
GLOBAL_ESTOP = "/sac_robot/estop"

SENSOR_QOS = qos_profile_sensor_data
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
TRANSITIONS_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
ACK_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
POLICY_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Episode summaries are kept for a learner that subscribes late (it starts after the collector).
EPISODES_QOS = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
# The e-stop has no one QoS: nodes subscribe with every profile a publisher might use (nodes/safety_topics.py).


def lockstep_qos(lockstep: bool) -> QoSProfile:
    """In lockstep every message of a step matters: reliable. In real time, the newest one does: best effort."""
    return COMMAND_QOS if lockstep else SENSOR_QOS


class SimClock:
    """A lockstep stand-in's /clock, published at ``hz`` of simulated time as Gazebo does: the first stamp,
    then one per period, and at once when time goes back (a restarted simulator). A lockstep collector pairs
    a step's messages by their stamps; the clock only drives its sim-time stamps and jump detection, so one
    /clock message per control step would cost every step a message for nothing."""

    def __init__(self, node: Node, hz: float) -> None:
        if not hz > 0:
            raise ValueError(f"clock_hz must be positive, got {hz}")
        self.period = 1.0 / hz
        self.last = -math.inf
        self.pub = node.create_publisher(Clock, "/clock", 10)

    def tick(self, t: float) -> None:
        if t - self.last >= self.period - 1e-9 or t < self.last:
            self.last = t
            self.pub.publish(cdr_writers.clock(t))


class MessageError(ValueError):
    """A message that cannot be used; the text names the topic and the problem."""


def to_time(seconds: float) -> Time:
    sec, nanosec = cdr_writers.split_time(seconds)  # the one rounding rule, shared with the packed messages
    return Time(sec=sec, nanosec=nanosec)


def from_time(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class JointOrder:
    """Maps a JointState's names onto the configured joint order, once per distinct name list."""

    def __init__(self, names: list[str], topic: str = JOINT_STATES) -> None:
        self.names = list(names)
        self.topic = topic
        self._cache: tuple[tuple[str, ...], np.ndarray] | None = None

    def index(self, msg_names: list[str]) -> np.ndarray:
        key = tuple(msg_names)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        position = {n: i for i, n in enumerate(msg_names)}
        missing = [n for n in self.names if n not in position]
        if missing:
            raise MessageError(f"{self.topic}: missing names {missing} (got {list(msg_names)})")
        idx = np.array([position[n] for n in self.names], dtype=np.int64)
        self._cache = (key, idx)
        return idx

    def read(self, msg: JointState, fields: tuple[str, ...] = ("position", "velocity", "effort")) -> list[np.ndarray]:
        return self.read_arrays(msg.name, {f: getattr(msg, f) for f in fields})

    def read_arrays(self, msg_names: list[str], arrays: dict[str, object]) -> list[np.ndarray]:
        """The named fields (position, velocity, effort) in the configured joint order, checked."""
        idx = self.index(msg_names)
        out = []
        for f, raw in arrays.items():
            values = np.asarray(raw, dtype=np.float64)
            if len(values) == 0 and f == "effort":
                out.append(np.zeros(len(self.names)))
                continue
            if len(values) != len(msg_names):
                raise MessageError(f"{self.topic}: {f} has {len(values)} values for {len(msg_names)} names")
            v = values[idx]
            if not np.all(np.isfinite(v)):
                raise MessageError(f"{self.topic}: {f} contains NaN or inf")
            out.append(v)
        return out


def robot_state(latest: dict[str, object], stamp: float) -> RobotState:
    """RobotState from the newest converted messages, keyed by topic kind ('joint_states', 'imu', and
    optionally 'odom', 'foot_contacts', 'scan'): one assembly for every node that reads a robot."""
    pos, vel, eff = latest["joint_states"]
    q, gyro, accel = latest["imu"]
    odom = latest.get("odom")
    return RobotState(
        joint_position=pos,
        joint_velocity=vel,
        joint_effort=eff,
        imu_orientation=q,
        imu_angular_velocity=gyro,
        imu_linear_acceleration=accel,
        base_position=odom[0] if odom is not None else None,
        base_linear_velocity=odom[1] if odom is not None else None,
        foot_contact=latest.get("foot_contacts"),
        scan=latest.get("scan"),
        stamp=stamp,
    )


def joint_state_msg(
    names: list[str], pos: np.ndarray, vel: np.ndarray, eff: np.ndarray, stamp: float, msg: JointState | None = None
) -> JointState:
    """Every builder fills `msg` when given one: a stand-in reuses one message per topic, because building
    messages with nested fields (Imu, Odometry) costs more than a lockstep step's physics."""
    msg = msg if msg is not None else JointState()
    msg.header.stamp = to_time(stamp)
    msg.name = list(names)
    msg.position, msg.velocity, msg.effort = pos.tolist(), vel.tolist(), eff.tolist()
    return msg


def imu_msg(
    orientation: np.ndarray, gyro: np.ndarray, accel: np.ndarray, stamp: float, frame: str, msg: Imu | None = None
) -> Imu:
    msg = msg if msg is not None else Imu()
    msg.header.stamp = to_time(stamp)
    msg.header.frame_id = frame
    o = msg.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in orientation)
    g = msg.angular_velocity
    g.x, g.y, g.z = (float(v) for v in gyro)
    a = msg.linear_acceleration
    a.x, a.y, a.z = (float(v) for v in accel)
    return msg


def read_imu(msg: Imu) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    o, g, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
    return check_imu(np.array([o.x, o.y, o.z, o.w]), np.array([g.x, g.y, g.z]), np.array([a.x, a.y, a.z]))


def check_imu(q: np.ndarray, gyro: np.ndarray, accel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(gyro)) and np.all(np.isfinite(accel))):
        raise MessageError(f"{IMU}: contains NaN or inf")
    norm = float(np.linalg.norm(q))
    if not 0.9 < norm < 1.1:
        raise MessageError(f"{IMU}: orientation is not a unit quaternion (norm {norm:.3f})")
    return q / norm, gyro, accel


def odom_msg(
    position: np.ndarray,
    orientation: np.ndarray,
    lin_vel: np.ndarray,
    stamp: float,
    frame: str,
    child: str,
    msg: Odometry | None = None,
) -> Odometry:
    msg = msg if msg is not None else Odometry()
    msg.header.stamp = to_time(stamp)
    msg.header.frame_id, msg.child_frame_id = frame, child
    p = msg.pose.pose.position
    p.x, p.y, p.z = (float(v) for v in position)
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in orientation)
    v = msg.twist.twist.linear
    v.x, v.y, v.z = (float(x) for x in lin_vel)
    return msg


def read_odom(msg: Odometry) -> tuple[np.ndarray, np.ndarray]:
    """(base position in the odom frame, base linear velocity in the body frame, as nav_msgs defines twist)."""
    p, v = msg.pose.pose.position, msg.twist.twist.linear
    return check_odom(np.array([p.x, p.y, p.z]), np.array([v.x, v.y, v.z]))


def check_odom(pos: np.ndarray, vel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))):
        raise MessageError(f"{ODOM}: contains NaN or inf")
    return pos, vel


def scan_msg(ranges: np.ndarray, range_max: float, stamp: float, frame: str, msg: LaserScan | None = None) -> LaserScan:
    msg = msg if msg is not None else LaserScan()
    msg.header.stamp = to_time(stamp)
    msg.header.frame_id = frame
    msg.range_min, msg.range_max = 0.0, float(range_max)
    msg.ranges = [float(r) for r in ranges]
    return msg


def read_scan(msg: LaserScan, expected: int | None = None) -> np.ndarray:
    return check_scan(np.asarray(msg.ranges, dtype=np.float64), expected)


def check_scan(r: np.ndarray, expected: int | None = None) -> np.ndarray:
    if expected is not None and len(r) != expected:
        raise MessageError(f"{SCAN}: {len(r)} ranges, expected {expected}")
    if not np.all(np.isfinite(r)):
        raise MessageError(f"{SCAN}: contains NaN or inf")
    return r


def privileged_msg(
    reward: float, terminated: bool, truncated: bool, stamp: float, msg: Vector3Stamped | None = None
) -> Vector3Stamped:
    """The stand-in's own reward, terminated and truncated for step k, stamped with step k's time."""
    msg = msg if msg is not None else Vector3Stamped()
    msg.header.stamp = to_time(stamp)
    msg.header.frame_id = "privileged"
    msg.vector.x, msg.vector.y, msg.vector.z = float(reward), float(terminated), float(truncated)
    return msg


def diagnostics_msg(
    name: str, hardware_id: str, level: int, message: str, values: dict[str, str], stamp: float
) -> DiagnosticArray:
    arr = DiagnosticArray()
    arr.header.stamp = to_time(stamp)
    status = DiagnosticStatus(level=bytes([int(level)]), name=name, message=message, hardware_id=hardware_id)
    status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
    arr.status = [status]
    return arr


def require_local_discovery() -> None:
    """Warn loudly when DDS discovery is not limited; the README explains why it matters."""
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") is None and os.environ.get("ROS_LOCALHOST_ONLY") != "1":
        import logging

        logging.getLogger("sac_robot").warning(
            "ROS_AUTOMATIC_DISCOVERY_RANGE is not set: DDS discovery will multicast on every network interface"
        )


# --- raw (serialized) messages: the collector's lockstep hot path (nodes/cdr.py says why) ---------------


def _raw(topic: str, data: bytes, parse: Callable[[bytes], Any], msg_type: type) -> Any:
    """``parse`` the bytes; a foreign encoding goes to rclpy's deserializer (a message object comes back)."""
    try:
        return parse(data)
    except cdr.CdrError as err:
        if "little-endian" not in str(err):
            raise MessageError(f"{topic}: {err}") from None
        return deserialize_message(data, msg_type)


def raw_joint_state(data: bytes, order: JointOrder, fields: tuple[str, ...]) -> tuple[list[np.ndarray], float]:
    got = _raw(order.topic, data, cdr.joint_state, JointState)
    if isinstance(got, JointState):
        return order.read(got, fields), from_time(got.header.stamp)
    stamp, names, pos, vel, eff = got
    arrays = {"position": pos, "velocity": vel, "effort": eff}
    return order.read_arrays(names, {f: arrays[f] for f in fields}), stamp


def raw_imu(data: bytes) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], float]:
    got = _raw(IMU, data, cdr.imu, Imu)
    if isinstance(got, Imu):
        return read_imu(got), from_time(got.header.stamp)
    return check_imu(*got[1:]), got[0]


def raw_odom(data: bytes) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    got = _raw(ODOM, data, cdr.odometry, Odometry)
    if isinstance(got, Odometry):
        return read_odom(got), from_time(got.header.stamp)
    return check_odom(*got[1:]), got[0]


def raw_scan(data: bytes, expected: int | None = None) -> tuple[np.ndarray, float]:
    got = _raw(SCAN, data, cdr.laser_scan, LaserScan)
    if isinstance(got, LaserScan):
        return read_scan(got, expected), from_time(got.header.stamp)
    return check_scan(got[1], expected), got[0]


def raw_vector3_stamped(data: bytes) -> tuple[tuple[float, float, float], float]:
    got = _raw(PRIVILEGED, data, cdr.vector3_stamped, Vector3Stamped)
    if isinstance(got, Vector3Stamped):
        v = got.vector
        return (v.x, v.y, v.z), from_time(got.header.stamp)
    return got[1:], got[0]
