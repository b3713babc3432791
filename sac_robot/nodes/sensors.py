# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The robot's newest sensor readings, for every node that reads a robot (collector, policy node).

Topics are subscribed raw and read by ros_io's checked readers (nodes/cdr.py says why raw). A reading
that fails its checks is counted in ``bad_messages`` and logged; one stamped earlier than the last of its
topic is counted in ``out_of_order`` and dropped, so old data never replaces newer. Joint states and IMU
feed the safety layer's watchdog. ``on_message(key)`` runs after each reading is stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from rclpy.node import Node
from rclpy.qos import QoSProfile

from sac_robot.nodes import ros_io as io
from sac_robot.nodes.safety_topics import QosWatch
from sac_robot.robot.description import RobotDescription
from sac_robot.robot.robot_step import Signals
from sac_robot.robot.safety import SafetyLayer
from sac_robot.robot.state import RobotState

JOINT_FIELDS = ("position", "velocity", "effort")
OPTIONAL = ("odom", "scan", "foot_contacts", "privileged")  # joint_states and imu are always read


class SensorCache:
    def __init__(
        self,
        node: Node,
        description: RobotDescription,
        topics: set[str],
        qos: QoSProfile,
        safety: SafetyLayer,
        counters: dict[str, int],
        on_message: Callable[[str], None] | None = None,
        watch: QosWatch | None = None,
    ) -> None:
        """``watch``: reports publishers whose QoS cannot reach joint_states and imu (the safety-relevant ones)."""
        self.node, self.safety, self.counters, self.on_message = node, safety, counters, on_message
        counters.setdefault("bad_messages", 0)
        counters.setdefault("out_of_order", 0)
        self.latest: dict[str, object] = {}
        self.stamps: dict[str, float] = {}
        joints = io.JointOrder(description.joint_names, io.JOINT_STATES)
        feet = io.JointOrder(description.feet, io.FOOT_CONTACTS)
        readers = {
            "joint_states": (io.JointState, io.JOINT_STATES, lambda d: io.raw_joint_state(d, joints, JOINT_FIELDS)),
            "imu": (io.Imu, io.IMU, io.raw_imu),
            "odom": (io.Odometry, io.ODOM, io.raw_odom),
            "scan": (io.LaserScan, io.SCAN, io.raw_scan),
            "foot_contacts": (io.JointState, io.FOOT_CONTACTS, partial(_feet, feet)),
            "privileged": (io.Vector3Stamped, io.PRIVILEGED, _privileged),
        }
        for key in ("joint_states", "imu", *(k for k in OPTIONAL if k in topics)):
            msg_type, topic, read = readers[key]
            events = watch.subscription(topic, qos) if watch is not None and key in ("joint_states", "imu") else None
            node.create_subscription(
                msg_type, topic, partial(self._on_raw, key, read), qos, raw=True, event_callbacks=events
            )

    def _on_raw(self, key: str, read: Callable[[bytes], tuple[object, float]], data: bytes) -> None:
        try:
            value, stamp = read(data)
        except io.MessageError as err:
            self.counters["bad_messages"] += 1
            self.node.get_logger().warning(f"message rejected: {err}", throttle_duration_sec=1.0)
            return
        if stamp < self.stamps.get(key, -math.inf):
            self.counters["out_of_order"] += 1
            self.node.get_logger().warning(
                f"{key}: message stamped {stamp:.6f} s is older than the last one ({self.stamps[key]:.6f} s); dropped",
                throttle_duration_sec=1.0,
            )
            return
        self.latest[key] = value
        self.stamps[key] = stamp
        if key in ("joint_states", "imu"):
            self.safety.note_sensor(key, stamp)
        if self.on_message is not None:
            self.on_message(key)

    def has(self, keys: set[str] | tuple[str, ...]) -> bool:
        return all(k in self.latest for k in keys)

    def state(self, stamp: float | None = None) -> RobotState:
        """The newest readings as one RobotState, stamped with the newer of joint states and IMU by default."""
        if stamp is None:
            stamp = max(self.stamps["joint_states"], self.stamps["imu"])
        return io.robot_state(self.latest, stamp)

    def clear(self) -> None:
        """Forget every reading (e.g. the simulator restarted and its clock went back)."""
        self.latest.clear()
        self.stamps.clear()


def _feet(order: io.JointOrder, data: bytes) -> tuple[object, float]:
    (contacts,), stamp = io.raw_joint_state(data, order, ("position",))
    return contacts, stamp


def _privileged(data: bytes) -> tuple[object, float]:
    (x, y, z), stamp = io.raw_vector3_stamped(data)
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
        raise io.MessageError(f"{io.PRIVILEGED}: contains NaN or inf")
    return Signals(x, y > 0.5, z > 0.5), stamp
