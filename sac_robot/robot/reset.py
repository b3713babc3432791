# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The reset state machine that brings the robot back to a standing start between episodes.

Real-robot learning spends much of its time resetting, and a reset that silently fails wastes the
episodes after it. This machine is tick-driven (the node calls ``tick`` from its control timer with the
current time), stands the robot up no faster than the velocity limits, verifies the result, retries a
bounded number of times and then asks for a person, saying why. In simulation it instead waits for the
simulator's reset service, called by the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sac_robot.robot.description import RobotDescription
from sac_robot.robot.safety import JointLimits, SafetyConfig
from sac_robot.robot.state import RobotState


class ResetConfig(BaseModel):
    """How resets are done; validation errors name the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["sim_service", "routine"] = Field(
        default="routine", description="sim_service: the simulator resets; routine: the robot stands itself up"
    )
    settle_s: float = Field(default=1.0, ge=0, description="time in safe mode before standing up, s")
    stand_up_s: float = Field(default=2.0, gt=0, description="minimum stand-up duration, s (longer if limits need)")
    home_tolerance: float = Field(default=0.15, gt=0, description="max |q - home| per joint to pass, rad")
    upright_tolerance: float = Field(default=0.3, gt=0, le=math.pi / 2, description="max |roll|, |pitch|, rad")
    max_retries: int = Field(default=3, ge=0, description="attempts after the first before asking for a person")
    verify_s: float = Field(default=0.5, ge=0, description="time holding home before checking the result, s")
    service_timeout_s: float = Field(default=10.0, gt=0, description="sim_service: no answer within this fails, s")


class ResetPhase(StrEnum):
    IDLE = "IDLE"
    SETTLE = "SETTLE"
    STAND_UP = "STAND_UP"
    VERIFY = "VERIFY"
    DONE = "DONE"
    RETRY = "RETRY"
    WAIT_FOR_PERSON = "WAIT_FOR_PERSON"
    CALL_SERVICE = "CALL_SERVICE"


@dataclass
class ResetStep:
    """What the node does this tick: send ``command`` through the safety layer (None: use safe mode)."""

    phase: ResetPhase
    command: np.ndarray | None
    status: str
    call_service: bool = False  # sim_service: issue the simulator's reset call now
    attempt: int = 0


@dataclass
class ResetStatistics:
    """How much of the robot's time goes into resets, for the run report."""

    resets_started: int = 0
    resets_done: int = 0
    attempts: int = 0
    waits_for_person: int = 0
    time_resetting_s: float = 0.0
    resets_per_hour: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)


class ResetRoutine:
    """Tick-driven reset: SETTLE → STAND_UP → VERIFY → DONE, with RETRY and WAIT_FOR_PERSON.

    ``safety`` supplies the position margin and velocity fraction, so stand-up targets are never clipped by
    the safety layer they pass through; None uses the bare URDF limits and full velocity limits.
    """

    def __init__(
        self,
        config: ResetConfig,
        description: RobotDescription,
        safety: SafetyConfig | None,
        control_period_s: float,
    ) -> None:
        if not (math.isfinite(control_period_s) and control_period_s > 0):
            raise ValueError(f"control_period_s must be a positive number of seconds, got {control_period_s}")
        self.config = config
        self.description = description
        self.control_period_s = float(control_period_s)
        margin = safety.position_margin if safety is not None else 0.0
        fraction = safety.max_velocity_fraction if safety is not None else 1.0
        limits = JointLimits.of(description, margin, fraction, self.control_period_s)  # the safety layer's own
        self.lower, self.upper, self.home = limits.lower, limits.upper, limits.home
        self.max_velocity, self.max_step = limits.max_velocity, limits.max_step

        self._phase = ResetPhase.IDLE
        self._phase_start = 0.0
        self._status = "idle"
        self._attempt = 0
        self._reason = ""
        self._started_at: float | None = None
        self._first_start: float | None = None
        self._time_done_s = 0.0  # time of finished (or aborted) resets
        self._q0: np.ndarray | None = None
        self._target: np.ndarray | None = None
        self._stand_up_duration = 0.0
        self._need_call = False
        self._call_time: float | None = None
        self._service_result: tuple[bool, str] | None = None
        self._stats = ResetStatistics()

    # ------------------------------------------------------------------ control

    @property
    def phase(self) -> ResetPhase:
        return self._phase

    @property
    def active(self) -> bool:
        """True while a reset is in progress, waiting for a person included."""
        return self._phase not in (ResetPhase.IDLE, ResetPhase.DONE)

    def start(self, now: float, state: RobotState | None, reason: str) -> None:
        """Begin a reset (e.g. reason 'fell', 'timeout'); restarting an active one counts its time so far.

        ``state`` is the state that triggered it (or None); its tilt goes into the status text.
        """
        now = float(now)
        if self.active and self._started_at is not None:
            self._time_done_s += now - self._started_at
        self._stats.resets_started += 1
        self._stats.reasons[reason] = self._stats.reasons.get(reason, 0) + 1
        if self._first_start is None:
            self._first_start = now
        self._started_at = now
        self._reason = reason
        if _state_ok(state, len(self.home)):
            assert state is not None
            roll, pitch = state.roll_pitch()
            self._reason = f"{reason}, roll {roll:.2f} rad, pitch {pitch:.2f} rad"  # how it started, for the log
        self._begin_attempt(now, first=True)

    def resume(self, now: float) -> bool:
        """After a person has helped: restart the routine with a fresh set of retries."""
        if self._phase != ResetPhase.WAIT_FOR_PERSON:
            return False
        self._begin_attempt(float(now), first=True)
        return True

    def service_done(self, ok: bool, message: str = "") -> bool:
        """Report the simulator reset call's result; False when no call was pending (e.g. after a timeout)."""
        if self._phase != ResetPhase.CALL_SERVICE or self._call_time is None or self._service_result is not None:
            return False
        self._service_result = (bool(ok), message)
        return True

    def tick(self, now: float, state: RobotState | None) -> ResetStep:
        """Advance the machine and return this tick's command and phase."""
        now = float(now)
        phase = self._phase
        if phase == ResetPhase.RETRY:
            self._begin_attempt(now, first=False)
            phase = self._phase
        if phase == ResetPhase.IDLE:
            return self._step(None)
        if phase == ResetPhase.DONE:
            hold = self.home.copy() if self.config.mode == "routine" else None
            return self._step(hold)
        if phase == ResetPhase.WAIT_FOR_PERSON:
            return self._step(None)  # a person is handling the robot: safe mode, no targets
        if phase == ResetPhase.CALL_SERVICE:
            return self._tick_service(now)
        if phase == ResetPhase.SETTLE:
            return self._tick_settle(now, state)
        if phase == ResetPhase.STAND_UP:
            return self._tick_stand_up(now)
        return self._tick_verify(now, state)

    # ------------------------------------------------------------------ phases

    def _tick_settle(self, now: float, state: RobotState | None) -> ResetStep:
        if now - self._phase_start < self.config.settle_s:
            return self._step(None)  # let the robot come to rest in safe mode before moving it
        if not _state_ok(state, len(self.home)):
            self._status = "settled, waiting for a valid robot state to stand up from"
            return self._step(None)
        assert state is not None
        self._q0 = np.clip(np.asarray(state.joint_position, dtype=np.float64), self.lower, self.upper)
        self._target = self._q0.copy()
        # Long enough that linear interpolation never exceeds the velocity limits, never shorter than asked.
        needed = float(np.max(np.abs(self.home - self._q0) / self.max_velocity))
        self._stand_up_duration = max(self.config.stand_up_s, needed)
        self._enter(ResetPhase.STAND_UP, now, f"standing up over {self._stand_up_duration:.2f} s")
        return self._step(self._target.copy())

    def _tick_stand_up(self, now: float) -> ResetStep:
        assert self._q0 is not None and self._target is not None
        s = min(1.0, (now - self._phase_start) / self._stand_up_duration)
        desired = self.home if s >= 1.0 else self._q0 + (self.home - self._q0) * s
        delta = desired - self._target
        # Irregular ticks could make interpolation jump: bound every per-step change by the rate limit too.
        self._target = np.where(
            np.abs(delta) <= self.max_step, desired, self._target + np.clip(delta, -self.max_step, self.max_step)
        )
        command = self._target.copy()
        if np.array_equal(self._target, self.home):
            self._enter(ResetPhase.VERIFY, now, "holding home pose before verifying")
        return self._step(command)

    def _tick_verify(self, now: float, state: RobotState | None) -> ResetStep:
        if now - self._phase_start < self.config.verify_s:
            return self._step(self.home.copy())
        failure = self._check(state)
        if failure is None:
            self._finish(now)
            return self._step(self.home.copy())
        self._fail(now, *failure)
        return self._step(None if self._phase == ResetPhase.WAIT_FOR_PERSON else self.home.copy())

    def _tick_service(self, now: float) -> ResetStep:
        if self._need_call:
            self._need_call = False
            self._call_time = now
            self._service_result = None
            self._status = f"calling the simulator reset service (attempt {self._attempt})"
            return self._step(None, call_service=True)
        if self._service_result is not None:
            ok, message = self._service_result
            if ok:
                self._finish(now)
            else:
                self._fail(now, "simulator reset service failed", message or "no message")
            return self._step(None)
        assert self._call_time is not None
        if now - self._call_time > self.config.service_timeout_s:
            self._fail(now, "simulator reset service timed out", f"no answer in {self.config.service_timeout_s:.1f} s")
        return self._step(None)

    # ------------------------------------------------------------------ helpers

    def _begin_attempt(self, now: float, first: bool) -> None:
        self._attempt = 1 if first else self._attempt + 1
        self._stats.attempts += 1
        self._q0 = self._target = None
        if self.config.mode == "sim_service":
            self._need_call = True
            self._call_time = None
            self._service_result = None
            self._enter(ResetPhase.CALL_SERVICE, now, f"reset ({self._reason}): calling the simulator")
        else:
            self._enter(ResetPhase.SETTLE, now, f"reset ({self._reason}): settling, attempt {self._attempt}")

    def _check(self, state: RobotState | None) -> tuple[str, str] | None:
        """(why, detail) of a failed verification, or None when the robot stands at home."""
        if not _state_ok(state, len(self.home)):
            return "no valid robot state", "joint states or IMU missing or non-finite"
        assert state is not None
        roll, pitch = state.roll_pitch()
        tol = self.config.upright_tolerance
        tilted = [f"{name} {value:.2f} rad" for name, value in (("roll", roll), ("pitch", pitch)) if abs(value) > tol]
        if tilted:
            return "robot not upright", ", ".join(tilted)
        error = np.abs(np.asarray(state.joint_position, dtype=np.float64) - self.home)
        worst = int(np.argmax(error))
        if error[worst] > self.config.home_tolerance:
            return "joints not at home", f"{self.description.joint_names[worst]} off by {error[worst]:.2f} rad"
        return None

    def _fail(self, now: float, why: str, detail: str) -> None:
        if self._attempt > self.config.max_retries:
            self._stats.waits_for_person += 1
            plural = "attempt" if self._attempt == 1 else "attempts"
            self._enter(ResetPhase.WAIT_FOR_PERSON, now, f"{why} after {self._attempt} {plural} ({detail})")
        else:
            self._enter(ResetPhase.RETRY, now, f"{why} ({detail}): attempt {self._attempt} failed, retrying")

    def _finish(self, now: float) -> None:
        self._stats.resets_done += 1
        if self._started_at is not None:
            self._time_done_s += now - self._started_at
        self._started_at = None
        plural = "attempt" if self._attempt == 1 else "attempts"
        self._enter(ResetPhase.DONE, now, f"reset done after {self._attempt} {plural}")

    def _enter(self, phase: ResetPhase, now: float, status: str) -> None:
        self._phase = phase
        self._phase_start = now
        self._status = status

    def _step(self, command: np.ndarray | None, call_service: bool = False) -> ResetStep:
        return ResetStep(self._phase, command, self._status, call_service, self._attempt)

    # ------------------------------------------------------------------ statistics

    def statistics(self, now: float, since: float | None = None) -> ResetStatistics:
        """Totals so far; resets per hour over [since, now], ``since`` defaulting to the first reset's start."""
        stats = replace(self._stats, reasons=dict(self._stats.reasons))
        ongoing = now - self._started_at if self.active and self._started_at is not None else 0.0
        stats.time_resetting_s = self._time_done_s + ongoing
        origin = self._first_start if since is None else since
        span = now - origin if origin is not None else 0.0
        stats.resets_per_hour = stats.resets_started * 3600.0 / span if span > 0 else 0.0
        return stats


def _state_ok(state: RobotState | None, num_joints: int) -> bool:
    return state is not None and np.shape(state.joint_position) == (num_joints,) and state.is_finite()
