# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""A lockstep stand-in's /clock (ros_io.SimClock): the first stamp at once, then one per period of
simulated time, and at once when time goes back, so a restarted simulator is seen as a clock jump."""

from __future__ import annotations

import pytest
from rclpy.serialization import deserialize_message
from rosgraph_msgs.msg import Clock

from sac_robot.nodes import ros_io as io


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[float] = []

    def create_publisher(self, msg_type: type, topic: str, qos: int) -> _Recorder:
        assert msg_type is Clock and topic == "/clock"
        return self

    def publish(self, data: bytes) -> None:
        self.sent.append(io.from_time(deserialize_message(data, Clock).clock))


def test_clock_is_published_once_per_period_and_at_once_when_time_restarts() -> None:
    node = _Recorder()
    clock = io.SimClock(node, 10.0)  # type: ignore[arg-type]
    for k in range(26):  # 0.5 s of a 50 Hz lockstep
        clock.tick(k * 0.02)
    assert node.sent == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    clock.tick(0.0)  # the simulator restarted
    clock.tick(0.02)
    clock.tick(0.1)
    assert node.sent[6:] == pytest.approx([0.0, 0.1])


def test_clock_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="clock_hz"):
        io.SimClock(_Recorder(), 0.0)  # type: ignore[arg-type]
