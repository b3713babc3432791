# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Bring-up check: before learning on a new robot, prove the joint mapping is what the description says.

A swapped joint order, a reversed motor direction or a wrong gear ratio turns every learned action into
the wrong motion, and a learner will happily train on it. This check moves one joint at a time by a small,
slow step and back, and compares the measured joint states with what was commanded; on the first mismatch
it stops, holds the pose and names the joint. Tick-driven like the reset routine, with time passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sac_robot.robot.description import RobotDescription
from sac_robot.robot.safety import JointLimits
from sac_robot.robot.state import RobotState


class BringupConfig(BaseModel):
    """Size and pace of the test motions; small and slow so a wrong mapping cannot hurt the robot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amplitude: float = Field(default=0.1, gt=0, le=0.5, description="test motion per joint, rad")
    speed: float = Field(default=0.2, gt=0, le=2.0, description="target speed of the test motion, rad/s")
    settle_s: float = Field(default=0.5, ge=0, description="hold time before measuring, s")
    tolerance: float = Field(default=0.04, gt=0, description="allowed error of the measured motion, rad")
    limit_margin: float = Field(default=0.05, ge=0, description="targets stay this far inside the limits, rad")

    @model_validator(mode="after")
    def _check_tolerance(self) -> BringupConfig:
        if not self.tolerance < self.amplitude / 2:
            raise ValueError(
                f"tolerance ({self.tolerance} rad) must be below half the amplitude ({self.amplitude} rad), "
                "otherwise a joint that did not move could pass"
            )
        return self


class _Phase(StrEnum):
    MOVE_OUT = "MOVE_OUT"
    SETTLE_OUT = "SETTLE_OUT"
    MOVE_BACK = "MOVE_BACK"
    SETTLE_BACK = "SETTLE_BACK"
    PASSED = "PASSED"
    FAILED = "FAILED"


@dataclass
class BringupStep:
    """This tick's position targets (None before a pose is known) and the check's verdict so far."""

    command: np.ndarray | None
    done: bool
    passed: bool
    message: str
    joint: str | None = None  # the joint under test


class BringupCheck:
    """Moves each joint by +amplitude (or −amplitude when a limit is too close) and back, verifying each."""

    def __init__(self, config: BringupConfig, description: RobotDescription, control_period_s: float) -> None:
        if not (math.isfinite(control_period_s) and control_period_s > 0):
            raise ValueError(f"control_period_s must be a positive number of seconds, got {control_period_s}")
        self.config = config
        self.description = description
        self.control_period_s = float(control_period_s)
        self.names = description.joint_names
        self.hard_lower = description.array("lower")
        self.hard_upper = description.array("upper")
        limits = JointLimits.of(description, config.limit_margin, 1.0, self.control_period_s, "limit_margin")
        self.lower, self.upper = limits.lower, limits.upper
        self.max_step = np.minimum(config.speed * self.control_period_s, limits.max_step)  # slow: a test motion

        self._started = False
        self._phase = _Phase.MOVE_OUT
        self._phase_start = 0.0
        self._index = 0
        self._targets: np.ndarray | None = None
        self._start_targets: np.ndarray | None = None
        self._baseline: np.ndarray | None = None  # measured pose when the current joint began to move
        self._offset = 0.0
        self._message = "not started"
        self._report: dict[str, dict[str, Any]] = {
            name: {"status": "not tested", "commanded": None, "measured": None, "message": ""} for name in self.names
        }

    @property
    def done(self) -> bool:
        return self._phase in (_Phase.PASSED, _Phase.FAILED)

    @property
    def passed(self) -> bool:
        return self._phase == _Phase.PASSED

    def report(self) -> dict[str, dict[str, Any]]:
        """Per joint: status ('passed', 'failed', 'not tested'), commanded and measured motion (rad), message."""
        return {name: dict(entry) for name, entry in self._report.items()}

    def start(self, now: float, state: RobotState | None) -> None:
        """Begin (or restart) the check from the measured pose; ``tick`` calls this on its first call."""
        self._started = True
        self._index = 0
        self._targets = None
        if not self._state_ok(state):
            self._fail(float(now), None, "no valid joint state to start the check from")
            return
        assert state is not None
        q = np.asarray(state.joint_position, dtype=np.float64)
        self._targets = q.copy()  # hold the measured pose: no jump at the start
        self._start_targets = q.copy()
        if self._outside_limits(float(now), q):
            return
        self._begin_joint(float(now), q)

    def tick(self, now: float, state: RobotState | None) -> BringupStep:
        """Advance the check; send ``command`` as position targets through the safety layer."""
        now = float(now)
        if not self._started:
            self.start(now, state)
            return self._step()
        if self.done:
            return self._step()
        if not self._state_ok(state):
            self._fail(now, self._index, "lost the joint state during the check")
            return self._step()
        assert state is not None and self._targets is not None and self._start_targets is not None
        q = np.asarray(state.joint_position, dtype=np.float64)
        if self._outside_limits(now, q):
            return self._step()
        i = self._index
        if self._phase == _Phase.MOVE_OUT:
            if self._ramp(i, self._start_targets[i] + self._offset):
                self._enter(_Phase.SETTLE_OUT, now)
        elif self._phase == _Phase.SETTLE_OUT:
            if now - self._phase_start >= self.config.settle_s:
                assert self._baseline is not None
                failure = self._judge(i, q - self._baseline)
                if failure is not None:
                    self._fail(now, i, failure)
                else:
                    self._enter(_Phase.MOVE_BACK, now)
        elif self._phase == _Phase.MOVE_BACK:
            if self._ramp(i, self._start_targets[i]):
                self._enter(_Phase.SETTLE_BACK, now)
        elif self._phase == _Phase.SETTLE_BACK and now - self._phase_start >= self.config.settle_s:
            assert self._baseline is not None
            off = float(q[i] - self._baseline[i])
            if abs(off) > self.config.tolerance:
                self._fail(now, i, f"joint {self.names[i]}: did not return to its start pose (off by {off:+.2f} rad)")
            else:
                self._report[self.names[i]]["status"] = "passed"
                self._index += 1
                if self._index == len(self.names):
                    self._phase = _Phase.PASSED
                    self._message = f"all {len(self.names)} joints moved as commanded"
                else:
                    self._begin_joint(now, q)
        return self._step()

    # ------------------------------------------------------------------ helpers

    def _begin_joint(self, now: float, q: np.ndarray) -> None:
        assert self._start_targets is not None
        i = self._index
        start = self._start_targets[i]
        up, down = self.upper[i] - start, start - self.lower[i]
        amp = self.config.amplitude
        # Prefer +amplitude; near the upper limit go the other way; shrink only if both sides are tight.
        if up >= amp:
            offset = amp
        elif down >= amp:
            offset = -amp
        else:
            offset = up if up >= down else -down
        if abs(offset) < 2 * self.config.tolerance:
            self._fail(now, i, f"joint {self.names[i]}: no room to move inside its limits from {start:+.2f} rad")
            return
        self._offset = float(offset)
        self._baseline = q.copy()
        self._report[self.names[i]]["commanded"] = self._offset
        self._enter(_Phase.MOVE_OUT, now)
        self._message = f"moving {self.names[i]} by {self._offset:+.2f} rad"

    def _ramp(self, i: int, goal: float) -> bool:
        """Move joint i's target toward goal by at most one step; True once it is there."""
        assert self._targets is not None
        delta = goal - self._targets[i]
        if abs(delta) <= self.max_step[i]:
            self._targets[i] = goal
            return True
        self._targets[i] += math.copysign(self.max_step[i], delta)  # slow: a wrong mapping moves gently
        return False

    def _judge(self, i: int, moved: np.ndarray) -> str | None:
        """Why the measured motion ``moved`` (rad per joint) does not match commanding joint i, or None."""
        tol = self.config.tolerance
        name, cmd, got = self.names[i], self._offset, float(moved[i])
        self._report[name]["measured"] = got
        others = np.abs(moved).copy()
        others[i] = 0.0
        j = int(np.argmax(others))
        if others[j] > tol:
            if others[j] >= abs(got):
                return f"commanded {name} but {self.names[j]} moved: joint order mismatch"
            return f"commanded {name} but {self.names[j]} also moved {float(moved[j]):+.2f} rad: coupled joints"
        head = f"joint {name}: commanded {cmd:+.2f} rad, measured {got:+.2f} rad"
        if abs(got) <= tol:
            return f"{head}: joint did not move"
        if math.copysign(1.0, got) != math.copysign(1.0, cmd):
            return f"{head}: direction reversed"
        if abs(abs(got) - abs(cmd)) > tol:
            return f"{head}: wrong magnitude (check units or gear ratio)"
        return None

    def _outside_limits(self, now: float, q: np.ndarray) -> bool:
        bad = np.flatnonzero((q < self.hard_lower) | (q > self.hard_upper))
        if bad.size == 0:
            return False
        k = int(bad[0])
        self._fail(
            now,
            k,
            f"joint {self.names[k]}: measured {q[k]:+.2f} rad, outside its limits "
            f"[{self.hard_lower[k]:+.2f}, {self.hard_upper[k]:+.2f}]",
        )
        return True

    def _fail(self, now: float, index: int | None, message: str) -> None:
        self._phase = _Phase.FAILED
        self._phase_start = now
        self._message = message
        if index is not None:
            entry = self._report[self.names[index]]
            entry["status"] = "failed"
            entry["message"] = message

    def _enter(self, phase: _Phase, now: float) -> None:
        self._phase = phase
        self._phase_start = now

    def _state_ok(self, state: RobotState | None) -> bool:
        n = (len(self.names),)
        return (
            state is not None
            and np.shape(state.joint_position) == n
            and bool(np.all(np.isfinite(state.joint_position)))
        )

    def _step(self) -> BringupStep:
        joint = self.names[self._index] if self._index < len(self.names) and self._started else None
        command = None if self._targets is None else self._targets.copy()  # on failure: hold the last targets
        return BringupStep(command, self.done, self.passed, self._message, joint)
