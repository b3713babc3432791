# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Serializing the stand-ins' sensor messages and the collector's command straight to CDR bytes.

A lockstep step publishes seven messages; rclpy converts each Python message to C structs field by field
before Fast DDS serializes it again (~6-13 µs for an Imu or an Odometry). ``Publisher.publish`` also takes
the serialized bytes, so each writer here compiles one ``struct`` layout per message shape (frame ids,
joint names and array lengths are fixed for a topic) and packs a step's numbers in one call. The mirror
of ``cdr.py``; a test checks every writer against rclpy's deserializer on random values.

Layout (XCDR1, little endian): a 4-byte encapsulation header, then the fields, each primitive aligned to
its size counted from the end of that header; strings are uint32 length (with the NUL) + bytes;
sequences are uint32 count + elements; fixed arrays have no count.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

ENCAPSULATION = b"\x00\x01\x00\x00"  # plain CDR, little endian, no options


def split_time(seconds: float) -> tuple[int, int]:
    """(sec, nanosec) of a builtin_interfaces/Time: round once, then split (4.9999999996 s is 5 s, not 4)."""
    ns = round(seconds * 1e9)
    return ns // 1_000_000_000, ns % 1_000_000_000


def _cstring(text: str) -> bytes:
    return text.encode() + b"\0"


class Layout:
    """Builds a struct format for one message shape, field by field, with CDR's alignment padding."""

    def __init__(self) -> None:
        self.parts = ["<"]
        self.pos = 0  # counted from the end of the encapsulation header

    def _add(self, code: str, size: int, count: int = 1) -> Layout:
        pad = -self.pos % size
        if pad:
            self.parts.append(f"{pad}x")
        self.parts.append(f"{count}{code}")
        self.pos += pad + size * count
        return self

    def u32(self) -> Layout:
        return self._add("I", 4)

    def time(self) -> Layout:
        self._add("i", 4)
        return self._add("I", 4)

    def string(self, encoded: bytes) -> Layout:
        """A string whose bytes (NUL included) are passed as one argument: its length fixes the layout."""
        self.u32()
        self.parts.append(f"{len(encoded)}s")
        self.pos += len(encoded)
        return self

    def header(self, frame: bytes) -> Layout:
        return self.time().string(frame)

    def doubles(self, count: int) -> Layout:
        return self._add("d", 8, count) if count else self

    def floats(self, count: int) -> Layout:
        return self._add("f", 4, count) if count else self

    def double_sequence(self, count: int) -> Layout:
        return self.u32().doubles(count)

    def compile(self) -> struct.Struct:
        return struct.Struct("".join(self.parts))


class JointStateWriter:
    """sensor_msgs/JointState with a fixed list of names."""

    def __init__(self, names: Sequence[str], frame: str = "") -> None:
        self.frame = _cstring(frame)
        self.names = [_cstring(n) for n in names]
        n = len(self.names)
        layout = Layout().header(self.frame).u32()
        for name in self.names:
            layout.string(name)
        self.struct = layout.double_sequence(n).double_sequence(n).double_sequence(n).compile()
        self._prefix = [len(self.frame), self.frame, n]
        for name in self.names:
            self._prefix += [len(name), name]
        self.n = n

    def __call__(self, stamp: float, position: np.ndarray, velocity: np.ndarray, effort: np.ndarray) -> bytes:
        n = self.n
        return ENCAPSULATION + self.struct.pack(
            *split_time(stamp),
            *self._prefix,
            n,
            *np.asarray(position, dtype=np.float64).reshape(n).tolist(),
            n,
            *np.asarray(velocity, dtype=np.float64).reshape(n).tolist(),
            n,
            *np.asarray(effort, dtype=np.float64).reshape(n).tolist(),
        )


_COV9 = (0.0,) * 9
_COV36 = (0.0,) * 36


class ImuWriter:
    """sensor_msgs/Imu; covariances 0 ("unknown"), as the message objects the stand-ins used to send."""

    def __init__(self, frame: str) -> None:
        self.frame = _cstring(frame)
        self.struct = Layout().header(self.frame).doubles(4 + 9 + 3 + 9 + 3 + 9).compile()

    def __call__(self, stamp: float, orientation: np.ndarray, gyro: np.ndarray, accel: np.ndarray) -> bytes:
        return ENCAPSULATION + self.struct.pack(
            *split_time(stamp),
            len(self.frame),
            self.frame,
            *np.asarray(orientation, dtype=np.float64).reshape(4).tolist(),
            *_COV9,
            *np.asarray(gyro, dtype=np.float64).reshape(3).tolist(),
            *_COV9,
            *np.asarray(accel, dtype=np.float64).reshape(3).tolist(),
            *_COV9,
        )


class OdometryWriter:
    """nav_msgs/Odometry: pose (position, orientation) and linear velocity in the child frame."""

    def __init__(self, frame: str, child: str) -> None:
        self.frame, self.child = _cstring(frame), _cstring(child)
        self.struct = Layout().header(self.frame).string(self.child).doubles(3 + 4 + 36 + 3 + 3 + 36).compile()

    def __call__(self, stamp: float, position: np.ndarray, orientation: np.ndarray, velocity: np.ndarray) -> bytes:
        return ENCAPSULATION + self.struct.pack(
            *split_time(stamp),
            len(self.frame),
            self.frame,
            len(self.child),
            self.child,
            *np.asarray(position, dtype=np.float64).reshape(3).tolist(),
            *np.asarray(orientation, dtype=np.float64).reshape(4).tolist(),
            *_COV36,
            *np.asarray(velocity, dtype=np.float64).reshape(3).tolist(),
            0.0,
            0.0,
            0.0,
            *_COV36,
        )


class LaserScanWriter:
    """sensor_msgs/LaserScan with a fixed number of ranges, no intensities."""

    def __init__(self, frame: str, count: int, range_max: float) -> None:
        self.frame = _cstring(frame)
        self.count = count
        self.struct = Layout().header(self.frame).floats(7).u32().floats(count).u32().compile()
        self._fields = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, float(range_max))  # angles, times, range_min, range_max

    def __call__(self, stamp: float, ranges: np.ndarray) -> bytes:
        n = self.count
        return ENCAPSULATION + self.struct.pack(
            *split_time(stamp),
            len(self.frame),
            self.frame,
            *self._fields,
            n,
            *np.asarray(ranges, dtype=np.float64).reshape(n).tolist(),
            0,
        )


class Vector3StampedWriter:
    """geometry_msgs/Vector3Stamped (the stand-ins' privileged reward, terminated, truncated)."""

    def __init__(self, frame: str) -> None:
        self.frame = _cstring(frame)
        self.struct = Layout().header(self.frame).doubles(3).compile()

    def __call__(self, stamp: float, x: float, y: float, z: float) -> bytes:
        return ENCAPSULATION + self.struct.pack(*split_time(stamp), len(self.frame), self.frame, x, y, z)


_CLOCK = Layout().time().compile()


def clock(stamp: float) -> bytes:
    """rosgraph_msgs/Clock."""
    return ENCAPSULATION + _CLOCK.pack(*split_time(stamp))


class Float64MultiArrayWriter:
    """std_msgs/Float64MultiArray with an empty layout (ForwardCommandController's joint commands)."""

    def __init__(self, count: int) -> None:
        self.count = count
        # layout.dim (empty sequence), layout.data_offset, data
        self.struct = Layout().u32().u32().double_sequence(count).compile()

    def __call__(self, data: np.ndarray) -> bytes:
        n = self.count
        return ENCAPSULATION + self.struct.pack(0, 0, n, *np.asarray(data, dtype=np.float64).reshape(n).tolist())


_U8_HEAD = Layout().u32().u32().u32().compile()  # layout.dim (empty), layout.data_offset, data count


def uint8_multi_array(payload: bytes) -> bytes:
    """std_msgs/UInt8MultiArray carrying ``payload`` (the transitions wire format) with an empty layout."""
    return ENCAPSULATION + _U8_HEAD.pack(0, 0, len(payload)) + payload
