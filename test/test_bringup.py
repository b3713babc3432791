# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The bring-up check against fake robots with right and wrong wiring."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sac_robot.robot.bringup import BringupCheck, BringupConfig
from sac_robot.robot.description import RobotDescription
from sac_robot.robot.state import RobotState

DT = 0.02
CONFIG = BringupConfig(amplitude=0.1, speed=0.5, settle_s=0.1, tolerance=0.03, limit_margin=0.05)


def make_description() -> RobotDescription:
    joints = [
        {"name": "FL_hip_joint", "home": 0.0, "lower": -0.8, "upper": 0.8, "velocity": 10.0, "effort": 20.0},
        {"name": "FR_hip_joint", "home": 0.0, "lower": -0.8, "upper": 0.8, "velocity": 10.0, "effort": 20.0},
        {"name": "FL_thigh_joint", "home": 0.8, "lower": -1.0, "upper": 2.5, "velocity": 10.0, "effort": 20.0},
        # Home sits 0.02 rad inside the margined upper limit: the test motion has to go downward.
        {"name": "FL_calf_joint", "home": -0.97, "lower": -2.7, "upper": -0.9, "velocity": 10.0, "effort": 20.0},
    ]
    return RobotDescription.model_validate(
        {"name": "t", "urdf": "t.urdf", "base_link": "b", "imu_link": "i", "joints": joints}
    )


DESC = make_description()
NAMES = DESC.joint_names
HOME = DESC.array("home")
LOWER, UPPER = DESC.array("lower"), DESC.array("upper")


class WiredPlant:
    """A robot whose driver may route commands to the wrong joint, mirror one, or scale one.

    ``route[i]`` is the physical joint that configured command i drives; a reversed joint moves the
    opposite way around its start pose (motor direction flipped after calibrating at the start).
    """

    def __init__(self, q0, route=None, reversed_joint=None, scale=None, gain: float = 0.5) -> None:
        self.q = np.asarray(q0, dtype=np.float64).copy()
        self.q0 = self.q.copy()
        n = len(self.q)
        self.route = list(range(n)) if route is None else route
        self.sign = np.ones(n)
        if reversed_joint is not None:
            self.sign[reversed_joint] = -1.0
        self.scale = np.ones(n) if scale is None else np.asarray(scale, dtype=np.float64)
        self.gain = gain

    def step(self, command: np.ndarray | None) -> None:
        if command is None:
            return
        physical_target = self.q.copy()
        for i, p in enumerate(self.route):
            physical_target[p] = self.q0[p] + self.sign[p] * self.scale[p] * (command[i] - self.q0[i])
        self.q += self.gain * (physical_target - self.q)

    def state(self, now: float) -> RobotState:
        n = len(self.q)
        return RobotState(self.q.copy(), np.zeros(n), np.zeros(n), stamp=now)


def run(check: BringupCheck, plant: WiredPlant, max_ticks: int = 5000):
    steps, now = [], 0.0
    for _ in range(max_ticks):
        now += DT
        step = check.tick(now, plant.state(now))
        steps.append(step)
        plant.step(step.command)
        if step.done:
            return steps
    raise AssertionError("bring-up check never finished")


def assert_commands_safe(steps, start) -> None:
    """Targets stay inside the margined limits, move slowly, and only one joint is off its start at a time."""
    commands = [s.command for s in steps if s.command is not None]
    for a, b in itertools.pairwise(commands):
        assert np.all(np.abs(b - a) <= CONFIG.speed * DT + 1e-12)
    for c in commands:
        assert np.all(c >= LOWER + CONFIG.limit_margin - 1e-12) and np.all(c <= UPPER - CONFIG.limit_margin + 1e-12)
        assert np.count_nonzero(np.abs(c - start) > 1e-12) <= 1


def test_correct_wiring_passes() -> None:
    start = HOME.copy()
    plant = WiredPlant(start)
    check = BringupCheck(CONFIG, DESC, DT)
    steps = run(check, plant)
    final = steps[-1]
    assert final.done and final.passed, final.message
    assert final.message == "all 4 joints moved as commanded"
    assert_commands_safe(steps, start)
    report = check.report()
    assert all(entry["status"] == "passed" for entry in report.values())
    assert report["FL_calf_joint"]["commanded"] == pytest.approx(-0.1)  # too close to the upper limit to go up
    assert report["FL_thigh_joint"]["commanded"] == pytest.approx(0.1)
    assert report["FL_thigh_joint"]["measured"] == pytest.approx(0.1, abs=CONFIG.tolerance)
    np.testing.assert_allclose(plant.q, start, atol=CONFIG.tolerance)  # everything went back


def test_swapped_joints_are_refused_naming_them() -> None:
    plant = WiredPlant(HOME, route=[1, 0, 2, 3])  # FL_hip and FR_hip wired the other way round
    check = BringupCheck(CONFIG, DESC, DT)
    steps = run(check, plant)
    final = steps[-1]
    assert final.done and not final.passed
    assert final.message == "commanded FL_hip_joint but FR_hip_joint moved: joint order mismatch"
    assert_commands_safe(steps, HOME)
    report = check.report()
    assert report["FL_hip_joint"]["status"] == "failed"
    assert report["FR_hip_joint"]["status"] == "not tested"
    # It stops: further ticks hold the pose and keep the verdict.
    held = check.tick(999.0, plant.state(999.0))
    np.testing.assert_array_equal(held.command, final.command)
    assert held.done and not held.passed and held.message == final.message


def test_reversed_joint_is_refused_naming_it() -> None:
    plant = WiredPlant(HOME, reversed_joint=2)
    check = BringupCheck(CONFIG, DESC, DT)
    steps = run(check, plant)
    final = steps[-1]
    assert not final.passed and final.joint == "FL_thigh_joint"
    assert re.fullmatch(
        r"joint FL_thigh_joint: commanded \+0\.10 rad, measured -0\.(09|10) rad: direction reversed", final.message
    ), final.message
    report = check.report()
    assert [report[n]["status"] for n in NAMES] == ["passed", "passed", "failed", "not tested"]
    assert_commands_safe(steps, HOME)


def test_wrong_gear_ratio_is_refused() -> None:
    plant = WiredPlant(HOME, scale=[1.0, 2.0, 1.0, 1.0])
    final = run(BringupCheck(CONFIG, DESC, DT), plant)[-1]
    assert not final.passed and final.message.startswith("joint FR_hip_joint: commanded +0.10 rad, measured +0.2")
    assert "wrong magnitude" in final.message


def test_start_outside_limits_is_refused_without_moving() -> None:
    start = HOME.copy()
    start[3] = -0.85  # past the calf's upper limit of -0.9
    steps = run(BringupCheck(CONFIG, DESC, DT), WiredPlant(start))
    assert len(steps) == 1 and not steps[0].passed
    assert steps[0].message == "joint FL_calf_joint: measured -0.85 rad, outside its limits [-2.70, -0.90]"
    np.testing.assert_array_equal(steps[0].command, start)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=4, max_size=4))
def test_any_start_inside_limits_keeps_commands_inside(fractions) -> None:
    lower, upper = LOWER + CONFIG.limit_margin, UPPER - CONFIG.limit_margin
    start = lower + np.asarray(fractions) * (upper - lower)
    steps = run(BringupCheck(CONFIG, DESC, DT), WiredPlant(start))
    assert steps[-1].passed, steps[-1].message
    assert_commands_safe(steps, start)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValidationError, match="tolerance"):
        BringupConfig(amplitude=0.1, tolerance=0.08)
    with pytest.raises(ValidationError, match="amplitude"):
        BringupConfig(amplitude=2.0)
