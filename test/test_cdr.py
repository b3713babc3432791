# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The collector's raw-bytes sensor readers (sac_robot.nodes.cdr) read what rclpy's deserializer reads,
for random messages (frame ids and joint names of every length, so every alignment case), and refuse
truncated or foreign bytes with an error instead of reading garbage; the stand-ins' writers
(sac_robot.nodes.cdr_writers) produce bytes that rclpy deserializes into the messages they replace."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, UInt8MultiArray

from sac_robot.nodes import cdr, cdr_writers
from sac_robot.nodes import ros_io as io


def _text(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("abcdefgh_/"), size=int(rng.integers(0, 12))))


@pytest.mark.parametrize("seed", range(40))
def test_raw_readers_match_rclpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = float(rng.uniform(0, 1e6))
    stamp = io.from_time(io.to_time(t))
    n = int(rng.integers(0, 14))
    names = [_text(rng) or "j" for _ in range(n)]
    pos, vel, eff = (rng.standard_normal(n) for _ in range(3))
    msg = io.joint_state_msg(names, pos, vel, eff, t)
    msg.header.frame_id = _text(rng)
    got = cdr.joint_state(serialize_message(msg))
    assert got[0] == stamp and got[1] == names
    for a, b in zip(got[2:], (pos, vel, eff), strict=True):
        np.testing.assert_array_equal(a, b)

    q = rng.standard_normal(4)
    gyro, accel = rng.standard_normal(3), rng.standard_normal(3)
    msg = io.imu_msg(q, gyro, accel, t, _text(rng))
    msg.orientation_covariance = rng.standard_normal(9)
    got = cdr.imu(serialize_message(msg))
    assert got[0] == stamp
    for a, b in zip(got[1:], (q, gyro, accel), strict=True):
        np.testing.assert_array_equal(a, b)

    position, velocity = rng.standard_normal(3), rng.standard_normal(3)
    msg = io.odom_msg(position, q / np.linalg.norm(q), velocity, t, _text(rng), _text(rng))
    msg.twist.twist.angular.z = 3.0
    got = cdr.odometry(serialize_message(msg))
    assert got[0] == stamp
    np.testing.assert_array_equal(got[1], position)
    np.testing.assert_array_equal(got[2], velocity)

    msg = io.privileged_msg(float(rng.standard_normal()), bool(seed % 2), bool(seed % 3 == 0), t)
    msg.header.frame_id = _text(rng)
    assert cdr.vector3_stamped(serialize_message(msg)) == (stamp, msg.vector.x, msg.vector.y, msg.vector.z)

    ranges = rng.uniform(0, 1, int(rng.integers(0, 20)))
    msg = io.scan_msg(ranges, 1.0, t, _text(rng))
    msg.intensities = [1.0, 2.0]
    got = cdr.laser_scan(serialize_message(msg))
    assert got[0] == stamp
    np.testing.assert_array_equal(got[1], io.read_scan(msg))

    msg = Float64MultiArray(data=rng.standard_normal(n).tolist())
    for i in range(seed % 3):  # commands carry no layout, but a sender may add one
        msg.layout.dim.append(MultiArrayDimension(label=_text(rng), size=n, stride=i + 1))
    np.testing.assert_array_equal(cdr.float64_multi_array(serialize_message(msg)), np.asarray(msg.data))


def test_truncated_or_foreign_bytes_are_refused() -> None:
    data = serialize_message(io.joint_state_msg(["a", "b"], np.ones(2), np.ones(2), np.ones(2), 1.0))
    for cut in (0, 3, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(cdr.CdrError):
            cdr.joint_state(data[:cut])
    big_endian = b"\x00\x00" + data[2:]
    with pytest.raises(cdr.CdrError, match="little-endian"):
        cdr.joint_state(big_endian)
    huge_count = bytearray(data)  # frame_id "" ends at byte 13 of the payload; the name count follows at 16
    huge_count[4 + 16 : 4 + 20] = b"\xff\xff\xff\xff"
    with pytest.raises(cdr.CdrError, match="count"):
        cdr.joint_state(bytes(huge_count))
    with pytest.raises(cdr.CdrError):
        cdr.imu(data)  # a JointState is not an Imu: too short for one


def _same(msg: object, expected: object) -> None:
    """Field by field, as rclpy compares messages (arrays by value)."""
    assert msg == expected, f"{msg}\n!=\n{expected}"


@pytest.mark.parametrize("seed", range(40))
def test_writers_produce_what_rclpy_deserializes_as_the_message_objects(seed: int) -> None:
    """The stand-ins publish these bytes instead of message objects: every field must survive."""
    rng = np.random.default_rng(1000 + seed)
    t = float(rng.uniform(0, 1e6))
    n = int(rng.integers(0, 14))
    names = [_text(rng) or "j" for _ in range(n)]
    pos, vel, eff = (rng.standard_normal(n) for _ in range(3))
    data = cdr_writers.JointStateWriter(names)(t, pos, vel, eff)
    _same(deserialize_message(data, io.JointState), io.joint_state_msg(names, pos, vel, eff, t))

    q, gyro, accel = rng.standard_normal(4), rng.standard_normal(3), rng.standard_normal(3)
    frame, child = _text(rng), _text(rng)
    data = cdr_writers.ImuWriter(frame)(t, q, gyro, accel)
    _same(deserialize_message(data, io.Imu), io.imu_msg(q, gyro, accel, t, frame))

    data = cdr_writers.OdometryWriter(frame, child)(t, pos[:3] if n >= 3 else gyro, q, accel)
    _same(deserialize_message(data, io.Odometry), io.odom_msg(pos[:3] if n >= 3 else gyro, q, accel, t, frame, child))

    ranges = rng.uniform(0, 1, int(rng.integers(0, 20))).astype(np.float32)
    data = cdr_writers.LaserScanWriter(frame, len(ranges), 1.5)(t, ranges)
    _same(deserialize_message(data, io.LaserScan), io.scan_msg(ranges, 1.5, t, frame))

    reward, terminated, truncated = float(rng.standard_normal()), bool(seed % 2), bool(seed % 3 == 0)
    data = cdr_writers.Vector3StampedWriter("privileged")(t, reward, float(terminated), float(truncated))
    _same(deserialize_message(data, io.Vector3Stamped), io.privileged_msg(reward, terminated, truncated, t))

    _same(deserialize_message(cdr_writers.clock(t), Clock), Clock(clock=io.to_time(t)))
    data = cdr_writers.Float64MultiArrayWriter(n)(eff)
    _same(deserialize_message(data, Float64MultiArray), Float64MultiArray(data=eff.tolist()))
    payload = rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
    got = deserialize_message(cdr_writers.uint8_multi_array(payload), UInt8MultiArray)
    assert bytes(got.data) == payload and not got.layout.dim


def test_writers_refuse_values_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError):
        cdr_writers.JointStateWriter(["a", "b"])(0.0, np.zeros(3), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError):
        cdr_writers.Float64MultiArrayWriter(4)(np.zeros(12))
