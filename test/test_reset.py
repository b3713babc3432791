# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The reset routine against a small deterministic plant: stands up slowly, retries, asks for a person."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from pydantic import ValidationError

from sac_robot.robot.description import RobotDescription
from sac_robot.robot.reset import ResetConfig, ResetPhase, ResetRoutine
from sac_robot.robot.safety import SafetyConfig
from sac_robot.robot.state import RobotState

DT = 0.02


def make_description() -> RobotDescription:
    joints = [
        {"name": "hip", "home": 0.0, "lower": -0.8, "upper": 0.8, "velocity": 2.0, "effort": 20.0},
        {"name": "thigh", "home": 0.7, "lower": -1.0, "upper": 2.5, "velocity": 1.0, "effort": 30.0},
        {"name": "calf", "home": -1.4, "lower": -2.7, "upper": -0.9, "velocity": 1.5, "effort": 40.0},
    ]
    return RobotDescription.model_validate(
        {"name": "t", "urdf": "t.urdf", "base_link": "b", "imu_link": "i", "joints": joints}
    )


DESC = make_description()
HOME = DESC.array("home")
SAFETY = SafetyConfig(position_margin=0.05, max_velocity_fraction=0.5)
MAX_STEP = 0.5 * DESC.array("velocity") * DT


class FakePlant:
    """Joints track the position target with a first-order lag; roll is whatever the test says it is."""

    def __init__(self, q0, roll: float = 0.0, gain: float = 0.3) -> None:
        self.q = np.asarray(q0, dtype=np.float64).copy()
        self.qd = np.zeros_like(self.q)
        self.roll = roll
        self.gain = gain

    def step(self, target: np.ndarray | None) -> None:
        if target is None:  # safe mode: the joints stay where they are
            self.qd[:] = 0.0
            return
        new_q = self.q + self.gain * (target - self.q)
        self.qd = (new_q - self.q) / DT
        self.q = new_q

    def state(self, now: float) -> RobotState:
        quat = np.array([math.sin(self.roll / 2), 0.0, 0.0, math.cos(self.roll / 2)])
        return RobotState(self.q.copy(), self.qd.copy(), np.zeros_like(self.q), imu_orientation=quat, stamp=now)


def run(routine: ResetRoutine, plant: FakePlant, now: float, max_ticks: int = 2000, stop=(ResetPhase.DONE,)):
    """Tick until a phase in ``stop``; returns (now, steps)."""
    steps = []
    for _ in range(max_ticks):
        now += DT
        step = routine.tick(now, plant.state(now))
        steps.append(step)
        plant.step(step.command)
        if step.phase in stop:
            return now, steps
    raise AssertionError(f"reset stuck in {routine.phase}: {routine.tick(now, plant.state(now)).status}")


def assert_rate_limited(steps) -> None:
    """Consecutive targets never change faster than the velocity limit allows."""
    commands = [s.command for s in steps if s.command is not None]
    assert commands
    for a, b in itertools.pairwise(commands):
        assert np.all(np.abs(b - a) <= MAX_STEP + 1e-12)
    for c in commands:
        assert np.all(c >= DESC.array("lower") + 0.05) and np.all(c <= DESC.array("upper") - 0.05)


def test_crouched_robot_stands_up_slowly_and_finishes() -> None:
    config = ResetConfig(settle_s=0.2, stand_up_s=0.5, verify_s=0.2, home_tolerance=0.05)
    routine = ResetRoutine(config, DESC, SAFETY, DT)
    crouched = HOME + np.array([0.3, 1.5, -1.0])  # the thigh needs 1.5 rad at 0.5 rad/s: at least 3 s
    plant = FakePlant(crouched)
    routine.start(0.0, plant.state(0.0), reason="fell")
    end, steps = run(routine, plant, 0.0)

    phases = [s.phase for s in steps]
    assert phases[0] == ResetPhase.SETTLE and ResetPhase.STAND_UP in phases and ResetPhase.VERIFY in phases
    assert all(s.command is None for s in steps if s.phase == ResetPhase.SETTLE)  # settling is safe mode
    assert_rate_limited(steps)
    stand_up = [s.command for s in steps if s.phase == ResetPhase.STAND_UP]
    assert len(stand_up) * DT >= 1.5 / 0.5 - DT  # duration follows the slowest joint, not stand_up_s
    np.testing.assert_allclose(plant.q, HOME, atol=0.05)
    assert steps[-1].status == "reset done after 1 attempt"
    np.testing.assert_array_equal(routine.tick(end + DT, plant.state(end + DT)).command, HOME)  # DONE holds home

    stats = routine.statistics(end)
    assert stats.resets_started == 1 and stats.resets_done == 1 and stats.attempts == 1
    assert stats.reasons == {"fell": 1}
    assert stats.time_resetting_s == pytest.approx(end)


def test_robot_on_its_side_waits_for_person_then_resumes() -> None:
    config = ResetConfig(settle_s=0.1, stand_up_s=0.2, verify_s=0.1, max_retries=2)
    routine = ResetRoutine(config, DESC, SAFETY, DT)
    plant = FakePlant(HOME + 0.2, roll=1.5)
    routine.start(0.0, plant.state(0.0), reason="fell")
    now, steps = run(routine, plant, 0.0, stop=(ResetPhase.WAIT_FOR_PERSON,))

    assert steps[0].status == "reset (fell, roll 1.50 rad, pitch 0.00 rad): settling, attempt 1"
    retries = [s for s in steps if s.phase == ResetPhase.RETRY]
    assert len(retries) == 2 and "not upright" in retries[0].status
    waiting = steps[-1]
    assert waiting.command is None
    assert waiting.status == "robot not upright after 3 attempts (roll 1.50 rad)"
    assert_rate_limited(steps)
    for _ in range(50):  # it keeps waiting, in safe mode, however long nobody comes
        now += DT
        assert routine.tick(now, plant.state(now)).phase == ResetPhase.WAIT_FOR_PERSON
    assert not routine.statistics(now).resets_done

    plant.roll = 0.0  # a person rights the robot
    assert routine.resume(now)
    now, steps = run(routine, plant, now)
    assert steps[-1].status == "reset done after 1 attempt"
    stats = routine.statistics(now)
    assert stats.attempts == 4 and stats.waits_for_person == 1 and stats.resets_done == 1
    assert stats.time_resetting_s == pytest.approx(now)
    assert not routine.resume(now)  # nothing to resume once done


def test_joints_far_from_home_fail_verification_naming_the_joint() -> None:
    config = ResetConfig(settle_s=0.0, stand_up_s=0.2, verify_s=0.1, max_retries=0, home_tolerance=0.05)
    routine = ResetRoutine(config, DESC, SAFETY, DT)
    plant = FakePlant(HOME, gain=0.0)  # a calf that never moves: the plant ignores every target
    plant.q[2] = -1.0
    routine.start(0.0, plant.state(0.0), reason="timeout")
    _, steps = run(routine, plant, 0.0, stop=(ResetPhase.WAIT_FOR_PERSON,))
    assert steps[-1].status == "joints not at home after 1 attempt (calf off by 0.40 rad)"


def test_sim_service_retries_then_waits_for_person() -> None:
    routine = ResetRoutine(ResetConfig(mode="sim_service", max_retries=1, service_timeout_s=0.5), DESC, None, DT)
    routine.start(0.0, None, reason="timeout")
    step = routine.tick(0.02, None)
    assert step.phase == ResetPhase.CALL_SERVICE and step.call_service and step.command is None
    assert not routine.tick(0.04, None).call_service  # one call per attempt while it is in flight
    assert routine.service_done(False, "spawn failed")
    step = routine.tick(0.06, None)
    assert step.phase == ResetPhase.RETRY and "spawn failed" in step.status
    assert routine.tick(0.08, None).call_service  # second attempt
    step = routine.tick(0.7, None)  # no answer within service_timeout_s
    assert step.phase == ResetPhase.WAIT_FOR_PERSON
    assert step.status == "simulator reset service timed out after 2 attempts (no answer in 0.5 s)"
    assert not routine.service_done(True)  # a late answer changes nothing

    assert routine.resume(1.0)
    assert routine.tick(1.02, None).call_service
    assert routine.service_done(True)
    assert routine.tick(1.04, None).phase == ResetPhase.DONE
    stats = routine.statistics(1.04)
    assert stats.resets_done == 1 and stats.attempts == 3 and stats.time_resetting_s == pytest.approx(1.04)


def test_resets_per_hour_and_reasons() -> None:
    routine = ResetRoutine(ResetConfig(mode="sim_service"), DESC, None, DT)
    for k, reason in enumerate(["fell", "timeout", "fell", "fell"]):
        t = k * 900.0  # one reset every 15 minutes
        routine.start(t, None, reason=reason)
        routine.tick(t + 1.0, None)
        routine.service_done(True)
        assert routine.tick(t + 2.0, None).phase == ResetPhase.DONE
    stats = routine.statistics(3600.0)
    assert stats.resets_per_hour == pytest.approx(4 * 3600.0 / 3600.0)
    assert stats.reasons == {"fell": 3, "timeout": 1}
    assert stats.time_resetting_s == pytest.approx(8.0)
    assert routine.statistics(3600.0, since=-3600.0).resets_per_hour == pytest.approx(2.0)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValidationError, match="settle_s"):
        ResetConfig(settle_s=-1.0)
    with pytest.raises(ValidationError, match="mode"):
        ResetConfig(mode="teleport")
    with pytest.raises(ValidationError, match="max_retry"):
        ResetConfig(max_retry=3)
