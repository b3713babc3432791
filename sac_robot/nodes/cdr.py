# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Reading the robot's sensor messages straight from their serialized bytes (CDR, little endian).

rclpy turns every received message into Python objects, nested messages and covariance arrays included:
tens of microseconds for an Imu or an Odometry, six times per lockstep step. The collector only needs a
few numbers from each, so it subscribes raw and reads them here with ``struct`` at computed offsets.
Each reader returns exactly what the matching ros_io reader returns for the deserialized message (a test
checks this on random messages), and raises MessageError on bytes it cannot read; anything other than
plain little-endian CDR (e.g. big endian) is handed back to rclpy's deserializer by ``ros_io``.

Layout (XCDR1): 4 bytes of encapsulation header, then the fields, each primitive aligned to its size
relative to the end of that header; strings are uint32 length (with the NUL) + bytes; sequences are
uint32 count + elements; fixed arrays have no count.
"""

from __future__ import annotations

import struct

import numpy as np

CDR_LE = b"\x00\x01"  # encapsulation kind: plain CDR, little endian
_U32 = struct.Struct("<I")
_TIME = struct.Struct("<iI")


class CdrError(ValueError):
    """Bytes that are not a well-formed message of the expected type."""


class Reader:
    def __init__(self, data: bytes) -> None:
        if len(data) < 4:
            raise CdrError("shorter than its encapsulation header")
        if data[:2] != CDR_LE:
            raise CdrError(f"encapsulation {data[:2].hex()} is not little-endian CDR")
        self.buf = memoryview(data)[4:]
        self.pos = 0

    def _align(self, n: int) -> None:
        self.pos += -self.pos % n

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise CdrError("truncated")

    def u32(self) -> int:
        self._align(4)
        self._need(4)
        (v,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return v

    def stamp(self) -> float:
        self._need(8)
        sec, nsec = _TIME.unpack_from(self.buf, self.pos)
        self.pos += 8
        return sec + nsec * 1e-9

    def string(self) -> str:
        n = self.u32()
        self._need(n)
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        if n == 0 or raw[-1] != 0:
            raise CdrError("string without its terminating NUL")
        return raw[:-1].decode("utf-8", errors="replace")

    def _array(self, dtype: str, size: int, n: int) -> np.ndarray:
        self._align(size)
        self._need(size * n)
        out = np.frombuffer(self.buf, dtype=dtype, count=n, offset=self.pos).astype(np.float64)
        self.pos += size * n
        return out

    def doubles(self, n: int) -> np.ndarray:
        return self._array("<f8", 8, n)

    def floats(self, n: int) -> np.ndarray:
        return self._array("<f4", 4, n)

    def skip_doubles(self, n: int) -> None:
        self._align(8)
        self._need(8 * n)
        self.pos += 8 * n

    def double_sequence(self) -> np.ndarray:
        return self.doubles(self.u32())

    def float_sequence(self) -> np.ndarray:
        return self.floats(self.u32())

    def header(self) -> float:
        """std_msgs/Header: the stamp (frame_id is read past)."""
        t = self.stamp()
        self.string()
        return t


def joint_state(data: bytes) -> tuple[float, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(stamp, names, position, velocity, effort) of a sensor_msgs/JointState."""
    r = Reader(data)
    t = r.header()
    count = r.u32()
    if count > len(r.buf):
        raise CdrError("name count larger than the message")
    names = [r.string() for _ in range(count)]
    return t, names, r.double_sequence(), r.double_sequence(), r.double_sequence()


def imu(data: bytes) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(stamp, orientation xyzw, angular velocity, linear acceleration) of a sensor_msgs/Imu."""
    r = Reader(data)
    t = r.header()
    q = r.doubles(4)
    r.skip_doubles(9)
    gyro = r.doubles(3)
    r.skip_doubles(9)
    accel = r.doubles(3)
    r.skip_doubles(9)
    return t, q, gyro, accel


def odometry(data: bytes) -> tuple[float, np.ndarray, np.ndarray]:
    """(stamp, position, linear velocity in the child frame) of a nav_msgs/Odometry."""
    r = Reader(data)
    t = r.header()
    r.string()  # child_frame_id
    position = r.doubles(3)
    r.skip_doubles(4 + 36)  # orientation, pose covariance
    velocity = r.doubles(3)
    r.skip_doubles(3 + 36)  # angular velocity, twist covariance
    return t, position, velocity


def vector3_stamped(data: bytes) -> tuple[float, float, float, float]:
    """(stamp, x, y, z) of a geometry_msgs/Vector3Stamped."""
    r = Reader(data)
    t = r.header()
    x, y, z = r.doubles(3)
    return t, float(x), float(y), float(z)


def laser_scan(data: bytes) -> tuple[float, np.ndarray]:
    """(stamp, ranges) of a sensor_msgs/LaserScan."""
    r = Reader(data)
    t = r.header()
    r.floats(7)  # angle_min, angle_max, angle_increment, time_increment, scan_time, range_min, range_max
    ranges = r.float_sequence()
    r.float_sequence()  # intensities
    return t, ranges


def float64_multi_array(data: bytes) -> np.ndarray:
    """The data of a std_msgs/Float64MultiArray (its layout is read past: commands use none)."""
    r = Reader(data)
    dims = r.u32()
    if dims > len(r.buf):
        raise CdrError("dimension count larger than the message")
    for _ in range(dims):
        r.string()  # label
        r.u32()  # size
        r.u32()  # stride
    r.u32()  # data_offset
    return r.double_sequence()
