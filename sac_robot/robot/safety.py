# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The safety layer every joint command passes through, in the collector and in the deploy node.

A learning policy on real hardware will sooner or later ask for something absurd: a target past a joint
limit, a jump across the workspace, a NaN. This layer turns any request into a command the hardware can
take, and falls back to a configured safe-mode command whenever it cannot trust its inputs (stale or
non-finite sensors, a latched e-stop). It is plain Python with the time passed in explicitly, so the ROS
nodes call it from their timers and the tests drive it deterministically.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sac_robot.robot.description import RobotDescription
from sac_robot.robot.state import RobotState

SENSOR_KINDS = ("joint_states", "imu")

# Reason codes: the keys of SafetyLayer.counts and the strings in SafetyResult.reasons.
ESTOP = "estop"
ESTOP_PRESSED = "estop_pressed"
ESTOP_UNKNOWN = "estop_unknown"
ESTOP_HEARTBEAT = "estop_heartbeat"
ESTOP_HEARTBEAT_LOST = "estop_heartbeat_lost"
NO_STATE = "no_state"
STATE_SHAPE = "state_shape"
STATE_NONFINITE = "state_nonfinite"
STALE_JOINT_STATES = "stale_joint_states"
STALE_IMU = "stale_imu"
DESIRED_SHAPE = "desired_shape"
DESIRED_NONFINITE = "desired_nonfinite"
POSITION_LIMIT = "position_limit"
RATE_LIMIT = "rate_limit"
EFFORT_LIMIT = "effort_limit"
VELOCITY_LIMIT = "velocity_limit"
FELL = "fell"
LEARNER_GONE = "learner_gone"

# A release this soon after a press is a stale copy of an older message (see SafetyLayer.estop), not a person.
ESTOP_RELEASE_HOLDOFF_S = 0.25
# How much longer than estop_grace_s a node waits for the message of a latched e-stop publisher it can see.
ESTOP_LATCHED_WAIT_S = 10.0

_SAFE_MODES_FOR = {"position": ("hold",), "effort": ("damping", "zero_effort")}


class SafetyConfig(BaseModel):
    """Limits and fallbacks of the safety layer; one YAML block shared by the collector and the deploy node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_mode: Literal["position", "effort"] = Field(
        default="position", description="what the commands are: joint position targets or joint efforts"
    )
    position_margin: float = Field(default=0.05, ge=0, description="rad kept inside each URDF position limit")
    max_velocity_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="fraction of each joint's velocity limit; position targets change at most fraction*velocity*dt",
    )
    max_effort_fraction: float = Field(default=0.8, gt=0, le=1, description="fraction of each joint's effort limit")
    lowpass_alpha: float = Field(
        default=0.0, ge=0, lt=1, description="weight of the previous command in an exponential filter; 0 = off"
    )
    sensor_timeout_s: float = Field(default=0.1, gt=0, description="joint_states/IMU older than this → safe mode")
    max_roll: float = Field(default=0.8, gt=0, le=math.pi, description="|roll| beyond this is a fall, rad")
    max_pitch: float = Field(default=0.8, gt=0, le=math.pi / 2, description="|pitch| beyond this is a fall, rad")
    min_base_height: float | None = Field(
        default=None, gt=0, description="base height below this is a fall, m; needs base_position (optional)"
    )
    safe_mode: Literal["hold", "damping", "zero_effort"] = Field(
        default="hold",
        description="fallback command: hold (position mode), damping or zero_effort (effort mode); "
        "defaults to hold in position mode and damping in effort mode",
    )
    damping_kd: float | None = Field(
        default=None, ge=0, description="N·m·s/rad of the damping safe mode; None uses each joint's kd"
    )
    log_size: int = Field(default=100, ge=1, description="how many recent interventions are kept for diagnostics")
    estop_grace_s: float = Field(
        default=5.0,
        ge=0,
        description="after a node subscribes to the e-stop, hold the safe mode this long (steady clock) so that "
        "an e-stop latched before it started reaches it first (DDS discovery takes time)",
    )
    estop_heartbeat_s: float | None = Field(
        default=None,
        gt=0,
        description="fail-safe e-stop: when set, the robot moves only while 'e-stop false' messages keep arriving; "
        "none for this long latches the e-stop, as a wireless e-stop's receiver does when its radio dies",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_safe_mode(cls, data: Any) -> Any:
        # The only safe default depends on the command mode, so fill it before field validation.
        if isinstance(data, dict) and data.get("safe_mode") is None:
            mode = data.get("command_mode", "position")
            data = {**data, "safe_mode": "damping" if mode == "effort" else "hold"}
        return data

    @model_validator(mode="after")
    def _check_pairing(self) -> SafetyConfig:
        allowed = _SAFE_MODES_FOR[self.command_mode]
        if self.safe_mode not in allowed:
            raise ValueError(
                f"safe_mode: {self.safe_mode!r} is not available with command_mode {self.command_mode!r} "
                f"(use one of {list(allowed)})"
            )
        return self


@dataclass
class SafetyResult:
    """What to send this control step and why it differs from what was asked."""

    command: np.ndarray  # float64, shape (J,): position targets (rad) or efforts (N·m)
    intervened: bool
    reasons: list[str] = field(default_factory=list)
    safe_mode: bool = False
    fell: str | None = None  # a description of the fall when the robot is down, else None


@dataclass(frozen=True)
class Intervention:
    """One logged intervention, for diagnostics and post-mortems."""

    stamp: float
    reasons: tuple[str, ...]
    safe_mode: bool


@dataclass(frozen=True)
class JointLimits:
    """The limits a command must keep, derived once from the description: the safety layer owns them, and the
    reset routine and the bring-up check move the robot within the same ones."""

    lower: np.ndarray  # rad: each URDF lower limit plus the margin
    upper: np.ndarray  # rad: each URDF upper limit minus the margin
    home: np.ndarray  # the home pose, clipped into [lower, upper]
    max_velocity: np.ndarray  # rad/s: a fraction of each joint's velocity limit
    max_step: np.ndarray  # rad per control period at max_velocity

    @classmethod
    def of(
        cls,
        description: RobotDescription,
        margin: float,
        velocity_fraction: float,
        control_period_s: float,
        margin_key: str = "position_margin",
    ) -> JointLimits:
        lower = description.array("lower") + margin
        upper = description.array("upper") - margin
        cramped = [n for n, lo, hi in zip(description.joint_names, lower, upper) if not lo < hi]
        if cramped:
            raise ValueError(
                f"{margin_key} ({margin} rad) leaves no range for joints {cramped}: "
                "it must be below half of each joint's range"
            )
        max_velocity = velocity_fraction * description.array("velocity")
        home = np.clip(description.array("home"), lower, upper)
        limits = cls(lower, upper, home, max_velocity, max_velocity * control_period_s)
        for arr in (limits.lower, limits.upper, limits.home, limits.max_velocity, limits.max_step):
            arr.flags.writeable = False
        return limits


class StatusLevel(IntEnum):
    """Same values as diagnostic_msgs/DiagnosticStatus levels, so the node can pass them straight on."""

    OK = 0
    WARN = 1
    ERROR = 2


class SafetyLayer:
    """Turns desired joint commands into commands within limits, or into the safe-mode command.

    Call ``note_sensor(kind, stamp)`` for every joint_states and IMU message, ``filter(desired, state, now)``
    once per control step, ``estop(active, now)`` on e-stop changes and ``request_resume(now)`` when an
    operator asks to continue. Sensors never heard from count as stale. ``counts`` holds, per reason, the
    number of filter calls it applied to; 'estop_pressed', 'estop_heartbeat_lost' and 'fell' count events instead.
    """

    def __init__(
        self,
        config: SafetyConfig,
        description: RobotDescription,
        control_period_s: float,
        steady_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``steady_clock``: the clock of the e-stop's start-up grace and heartbeat (discovery and radio links
        run in wall time, whatever clock ``now`` comes from); tests pass their own."""
        if not (math.isfinite(control_period_s) and control_period_s > 0):
            raise ValueError(f"control_period_s must be a positive number of seconds, got {control_period_s}")
        self.config = config
        self.description = description
        self.control_period_s = float(control_period_s)
        self.num_joints = len(description.joints)
        self.limits = JointLimits.of(
            description, config.position_margin, config.max_velocity_fraction, self.control_period_s
        )
        self.lower, self.upper, self.home = self.limits.lower, self.limits.upper, self.limits.home
        self.velocity_limit = description.array("velocity")
        self.max_velocity, self.max_step = self.limits.max_velocity, self.limits.max_step
        self.max_effort = config.max_effort_fraction * description.array("effort")
        kd = description.array("kd") if config.damping_kd is None else np.full(self.num_joints, config.damping_kd)
        self.damping_kd = kd
        for arr in (self.max_effort, kd):
            arr.flags.writeable = False

        self.counts: dict[str, int] = {}
        self.interventions = 0
        self._log: deque[Intervention] = deque(maxlen=config.log_size)
        self._sensor_stamps: dict[str, float | None] = {kind: None for kind in SENSOR_KINDS}
        self._estop_pressed = False
        self._estop_latched = False
        self._steady = steady_clock
        self._estop_known_at = -math.inf  # steady time from which the e-stop state counts as known
        self._estop_known = True  # no node listens: nothing to wait for (listen_for_estop clears it)
        self._latched_publishers = 0  # transient-local e-stop publishers the node's ROS graph shows
        self._estop_heard = False  # any e-stop message arrived
        self._heartbeat_at: float | None = None  # steady time of the last 'released' message
        self._heartbeat_lost = False
        self._pressed_at = -math.inf  # steady time of the last press
        self._last_target: np.ndarray | None = None  # position mode: last command sent, the hold target
        self._last_effort = np.zeros(self.num_joints)  # effort mode: state of the low-pass filter
        self._last_result: SafetyResult | None = None
        self._last_now: float | None = None
        self._fell: str | None = None

    # ------------------------------------------------------------------ inputs

    def note_sensor(self, kind: str, stamp: float) -> None:
        """Record that a sensor message arrived; the watchdog compares these stamps with ``now``."""
        if kind not in SENSOR_KINDS:
            raise ValueError(f"unknown sensor kind {kind!r}; expected one of {list(SENSOR_KINDS)}")
        stamp = float(stamp)
        if not math.isfinite(stamp):
            return  # a broken stamp must not refresh the watchdog
        previous = self._sensor_stamps[kind]
        if previous is None or stamp > previous:
            self._sensor_stamps[kind] = stamp  # out-of-order messages never make the data look older

    def listen_for_estop(self) -> None:
        """A node has just subscribed to the e-stop: until ``estop_grace_s`` has passed on the steady clock
        every command is the safe mode (reason 'estop_unknown'), so a latched e-stop raised before the node
        started arrives before anything moves (DDS discovery and the latched message's delivery take time)."""
        self._estop_known_at = self._steady() + self.config.estop_grace_s
        self._estop_known = False

    def note_latched_estop_publishers(self, count: int) -> None:
        """The node's ROS graph shows ``count`` transient-local (latched) e-stop publishers. While there is one
        and no e-stop message has arrived yet, the grace goes on (a latched message is on its way), for at most
        ESTOP_LATCHED_WAIT_S beyond ``estop_grace_s``: a latched publisher that never published sends nothing."""
        self._latched_publishers = int(count)

    @property
    def estop_known(self) -> bool:
        """False during the start-up grace: nothing may move before a latched e-stop could have arrived."""
        if self._estop_known:
            return True  # once known, known for good: one attribute read on every control step
        t = self._steady()
        if t < self._estop_known_at:
            return False
        waiting_for_latched = self._latched_publishers > 0 and not self._estop_heard
        self._estop_known = not waiting_for_latched or t >= self._estop_known_at + ESTOP_LATCHED_WAIT_S
        return self._estop_known

    def estop(self, active: bool, now: float) -> bool:
        """Press (latch) or release the e-stop; release alone never resumes, see ``request_resume``.

        The nodes subscribe with several QoS profiles so that every publisher matches, so one message can
        arrive more than once, and a copy of a release can arrive just after a newer press. A release within
        ESTOP_RELEASE_HOLDOFF_S of a press is therefore ignored (returns False): such a stale copy cannot clear
        'pressed', and a person releasing that fast only has to release again. A release also counts as the
        heartbeat of ``estop_heartbeat_s``.
        """
        self._last_now = float(now)
        self._estop_heard = True
        t = self._steady()
        if active:
            if not self._estop_pressed:
                self._count(ESTOP_PRESSED)
                self._log.append(Intervention(float(now), (ESTOP_PRESSED,), True))
            self._estop_pressed = True
            self._estop_latched = True
            self._pressed_at = t
            return True
        if t - self._pressed_at < ESTOP_RELEASE_HOLDOFF_S:
            return False
        self._estop_pressed = False
        self._heartbeat_at = t
        self._heartbeat_lost = False
        return True

    def _heartbeat_reason(self) -> str | None:
        """With ``estop_heartbeat_s``: the reason to stop when the 'released' heartbeat is missing. Before the
        first heartbeat the robot just does not move; a heartbeat that stops latches the e-stop."""
        limit = self.config.estop_heartbeat_s
        if limit is None:
            return None
        if self._heartbeat_at is None:
            return ESTOP_HEARTBEAT
        if self._steady() - self._heartbeat_at > limit:
            if not self._heartbeat_lost:
                self._heartbeat_lost = True
                self._estop_latched = True  # like a radio e-stop: the link is back only after a person resumes
                self._count(ESTOP_HEARTBEAT_LOST)
                self._log.append(Intervention(self._steady(), (ESTOP_HEARTBEAT_LOST,), True))
            return ESTOP_HEARTBEAT
        return None

    def request_resume(self, now: float) -> tuple[bool, str]:
        """Clear a latched e-stop, only once it is released and both sensors are fresh."""
        if not self._estop_latched:
            return True, "no e-stop latched"
        if self._estop_pressed:
            return False, "cannot resume: e-stop still pressed, release it first"
        if self._heartbeat_reason() is not None:
            return False, (
                f"cannot resume: no e-stop heartbeat ('released' message) within "
                f"estop_heartbeat_s={self.config.estop_heartbeat_s} s"
            )
        stale = self._stale_details(float(now))
        if stale:
            return False, "cannot resume: " + "; ".join(stale.values())
        self._estop_latched = False
        return True, "resumed"

    def reset_filter(self, pose: np.ndarray | None = None) -> None:
        """Restart filters at an episode start: targets then ramp from ``pose`` (the measured pose).

        With ``pose=None`` the next measured pose seeds the hold target. Non-finite entries keep the
        previous target (or home) so a bad reading cannot become a target.
        """
        self._last_effort = np.zeros(self.num_joints)
        if pose is None:
            self._last_target = None
            return
        p = np.asarray(pose, dtype=np.float64)
        if p.shape != (self.num_joints,):
            raise ValueError(f"reset_filter: pose has shape {p.shape}, expected ({self.num_joints},)")
        fallback = self._last_target if self._last_target is not None else self.home
        self._last_target = np.clip(np.where(np.isfinite(p), p, fallback), self.lower, self.upper)

    # ------------------------------------------------------------------ the filter

    def filter(
        self, desired: np.ndarray, state: RobotState | None, now: float, blind: list[str] | None = None
    ) -> SafetyResult:
        """The command to send this control step, always finite and within position, rate and effort limits.

        ``blind``: this step's blind_reasons(state, now) when the caller has them already (the control loop).
        """
        now = float(now)
        self._last_now = now
        reasons: list[str] = []

        if not self.estop_known:
            reasons.append(ESTOP_UNKNOWN)  # just started: a latched e-stop may still be on its way
        heartbeat = self._heartbeat_reason()
        if heartbeat is not None:
            reasons.append(heartbeat)  # the fail-safe e-stop's link is silent: as good as pressed
        if self._estop_latched:
            reasons.append(ESTOP)  # an operator stopped the robot: nothing the policy says matters until resume
        blind = self.blind_reasons(state, now) if blind is None else blind
        state_ok = not any(r in (NO_STATE, STATE_SHAPE, STATE_NONFINITE) for r in blind)
        stale = [r for r in blind if r in (STALE_JOINT_STATES, STALE_IMU)]
        reasons += blind

        try:
            d = np.asarray(desired, dtype=np.float64)
        except (TypeError, ValueError):
            d = None
        if d is None or d.shape != (self.num_joints,):
            reasons.append(DESIRED_SHAPE)  # a malformed action cannot be mapped to joints
        elif not np.isfinite(d).all():
            reasons.append(DESIRED_NONFINITE)  # a diverged policy outputs NaN/inf: never forward it

        fell = self._fall_check(state) if state_ok and state is not None else None
        if fell is not None and self._fell is None:
            self._count(FELL)  # count falls, not control steps spent on the ground
        if state_ok:
            self._fell = fell

        safe = bool(reasons)
        if safe:
            command = self._safe_command(state, trusted=state_ok and not stale)
        else:
            assert d is not None and state is not None
            if self.config.command_mode == "position":
                command = self._limit_position(d, state, reasons)
            else:
                command = self._limit_effort(d, state, reasons)

        result = SafetyResult(command=command, intervened=bool(reasons), reasons=reasons, safe_mode=safe, fell=fell)
        if reasons:
            for reason in reasons:
                self._count(reason)
            self.interventions += 1
            self._log.append(Intervention(now, tuple(reasons), safe))
        self._last_result = result
        return result

    def _limit_position(self, d: np.ndarray, state: RobotState, reasons: list[str]) -> np.ndarray:
        prev = self._hold_target(state)
        x = d
        if self.config.lowpass_alpha > 0:
            a = self.config.lowpass_alpha
            x = a * prev + (1.0 - a) * x  # smooth jittery policies; configured, so not an intervention
        # np.minimum/np.maximum rather than np.clip: the same numbers, a third of the cost on the control path
        xc = np.minimum(np.maximum(x, self.lower), self.upper)  # URDF limits minus margin: never into hard stops
        if (xc != x).any():
            reasons.append(POSITION_LIMIT)
        delta = xc - prev
        step = np.minimum(np.maximum(delta, -self.max_step), self.max_step)  # no faster than fraction*velocity
        if (step != delta).any():
            reasons.append(RATE_LIMIT)
        # Speed-aware: a stiff PD can overshoot a slow target; a joint measured beyond its rated velocity is not
        # pushed further that way (its target holds, the PD's damping slows it).
        qd = state.joint_velocity
        overspeed = (np.abs(qd) > self.velocity_limit) & (step * qd > 0)
        if overspeed.any():
            step = np.where(overspeed, 0.0, step)
            reasons.append(VELOCITY_LIMIT)
        command = np.minimum(np.maximum(prev + step, self.lower), self.upper)  # guards against rounding only
        self._last_target = command
        return command.copy()

    def _limit_effort(self, d: np.ndarray, state: RobotState, reasons: list[str]) -> np.ndarray:
        x = d
        if self.config.lowpass_alpha > 0:
            a = self.config.lowpass_alpha
            x = a * self._last_effort + (1.0 - a) * x  # smooth jittery policies; configured, not an intervention
        tau = np.minimum(np.maximum(x, -self.max_effort), self.max_effort)  # motors have a torque rating
        if (tau != x).any():
            reasons.append(EFFORT_LIMIT)
        q, qd = state.joint_position, state.joint_velocity
        outward = ((q >= self.upper) & (tau > 0)) | ((q <= self.lower) & (tau < 0))
        if outward.any():
            tau[outward] = 0.0  # past the margin, no effort may push further toward the hard stop
            reasons.append(POSITION_LIMIT)
        overspeed = (np.abs(qd) > self.max_velocity) & (tau * qd > 0)
        if overspeed.any():
            tau[overspeed] = 0.0  # above the speed limit, no effort may accelerate the joint further
            reasons.append(VELOCITY_LIMIT)
        self._last_effort = tau
        return tau.copy()

    def _safe_command(self, state: RobotState | None, trusted: bool) -> np.ndarray:
        mode = self.config.safe_mode
        if mode == "hold":
            return self._hold_target(state).copy()  # keep the last safe target: no jump, the PD holds the pose
        if mode == "damping" and state is not None and trusted:
            tau = np.clip(-self.damping_kd * state.joint_velocity, -self.max_effort, self.max_effort)
        else:
            tau = np.zeros(self.num_joints)  # zero_effort, or damping without a trustworthy velocity
        self._last_effort = tau
        return tau.copy()

    def _hold_target(self, state: RobotState | None) -> np.ndarray:
        if self._last_target is None:
            if state is not None and self._state_shape_ok(state) and np.all(np.isfinite(state.joint_position)):
                seed = np.asarray(state.joint_position, dtype=np.float64)
            else:
                seed = self.home  # nothing measured yet: home is the only pose we know is inside limits
            self._last_target = np.clip(seed, self.lower, self.upper)
        return self._last_target

    # ------------------------------------------------------------------ checks

    def blind_reasons(self, state: RobotState | None, now: float) -> list[str]:
        """Why the robot's state cannot be trusted right now (missing, malformed, non-finite, stale sensors):
        a control step from such a state is no experience to learn from."""
        if state is None:
            reasons = [NO_STATE]  # without a measurement no limit can be checked
        elif not self._state_shape_ok(state):
            reasons = [STATE_SHAPE]  # a joint count mismatch means the joint mapping is wrong
        elif not state.is_finite():
            reasons = [STATE_NONFINITE]  # a NaN reading must never feed a command
        else:
            reasons = []
        # a dead sensor driver means we are blind: stop acting on old data
        return reasons + list(self._stale_details(float(now)))

    def _state_shape_ok(self, state: RobotState) -> bool:
        n = (self.num_joints,)
        return (
            np.shape(state.joint_position) == n
            and np.shape(state.joint_velocity) == n
            and np.shape(state.joint_effort) == n
            and np.shape(state.imu_orientation) == (4,)
        )

    def _stale_details(self, now: float) -> dict[str, str]:
        details: dict[str, str] = {}
        for kind, reason in (("joint_states", STALE_JOINT_STATES), ("imu", STALE_IMU)):
            stamp = self._sensor_stamps[kind]
            if stamp is None:
                details[reason] = f"no {kind} message received"
            elif not math.isfinite(now):
                details[reason] = f"cannot age {kind}: current time is {now}"  # a NaN clock must not pass as fresh
            elif now - stamp > self.config.sensor_timeout_s:
                details[reason] = f"{kind} {now - stamp:.3f} s old (timeout {self.config.sensor_timeout_s:.3f} s)"
        return details

    def _fall_check(self, state: RobotState) -> str | None:
        roll, pitch = state.roll_pitch()
        if abs(roll) > self.config.max_roll:
            return f"roll {roll:+.2f} rad beyond max_roll {self.config.max_roll:.2f}"
        if abs(pitch) > self.config.max_pitch:
            return f"pitch {pitch:+.2f} rad beyond max_pitch {self.config.max_pitch:.2f}"
        min_h = self.config.min_base_height
        if min_h is not None and state.base_position is not None and np.size(state.base_position) >= 3:
            height = float(np.asarray(state.base_position).reshape(-1)[2])
            if height < min_h:
                return f"base height {height:.3f} m below min_base_height {min_h:.3f}"
        return None

    def _count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    # ------------------------------------------------------------------ status

    @property
    def in_safe_mode(self) -> bool:
        """True while latched or when the last command was the safe-mode command (or none was made yet)."""
        return self._estop_latched or self._last_result is None or self._last_result.safe_mode

    def hold(self, state: RobotState | None, now: float, reason: str) -> SafetyResult:
        """The safe-mode command for a reason outside the layer (e.g. the learner is gone), counted and logged."""
        trusted = state is not None and not self.blind_reasons(state, now)
        result = SafetyResult(
            command=self._safe_command(state, trusted=trusted), intervened=True, reasons=[reason], safe_mode=True
        )
        self._count(reason)
        self.interventions += 1
        self._log.append(Intervention(float(now), (reason,), True))
        self._last_result = result
        return result

    @property
    def estop_latched(self) -> bool:
        return self._estop_latched

    @property
    def estop_pressed(self) -> bool:
        return self._estop_pressed

    @property
    def last_result(self) -> SafetyResult | None:
        return self._last_result

    @property
    def recent_interventions(self) -> list[Intervention]:
        """The last ``log_size`` interventions, oldest first."""
        return list(self._log)

    def status_level(self) -> StatusLevel:
        """ERROR in safe mode, WARN while clipping or fallen, OK otherwise."""
        if self.in_safe_mode:
            return StatusLevel.ERROR
        assert self._last_result is not None
        if self._last_result.intervened or self._fell is not None:
            return StatusLevel.WARN
        return StatusLevel.OK

    def status_message(self) -> str:
        """One line for DiagnosticStatus.message, matching ``status_level``."""
        if self._heartbeat_lost or (self.config.estop_heartbeat_s is not None and self._heartbeat_at is None):
            return "e-stop heartbeat missing: publish 'false' on sac_robot/estop, then resume"
        if not self.estop_known:
            return "starting: waiting for a latched e-stop to arrive"
        if self._estop_latched:
            return "e-stop pressed" if self._estop_pressed else "e-stop released, waiting for resume"
        if self._last_result is None:
            return "no command filtered yet"
        if self._last_result.safe_mode:
            return "safe mode: " + ", ".join(self._last_result.reasons)
        if self._last_result.intervened:
            return "limiting: " + ", ".join(self._last_result.reasons)
        if self._fell is not None:
            return "fallen: " + self._fell
        return "ok"

    def diagnostics(self, now: float | None = None) -> dict[str, str]:
        """Key/values for a DiagnosticStatus; sensor ages use ``now`` or the last time seen."""
        now = self._last_now if now is None else float(now)
        if self._estop_pressed:
            estop = "pressed"
        elif self._heartbeat_lost:
            estop = "heartbeat lost (latched)"
        elif self._estop_latched:
            estop = "latched (released, awaiting resume)"
        else:
            estop = "clear"
        last = self._last_result
        out = {
            "command_mode": self.config.command_mode,
            "safe_mode_kind": self.config.safe_mode,
            "in_safe_mode": str(self.in_safe_mode).lower(),
            "estop": estop,
            "estop_known": str(self.estop_known).lower(),
            "last_reasons": ", ".join(last.reasons) if last is not None and last.reasons else "none",
            "fell": self._fell or "no",
            "interventions": str(self.interventions),
            "last_intervention_stamp": f"{self._log[-1].stamp:.3f}" if self._log else "never",
        }
        if self.config.estop_heartbeat_s is not None:
            beat = self._heartbeat_at
            out["estop_heartbeat_age_s"] = "never" if beat is None else f"{self._steady() - beat:.3f}"
        for kind in SENSOR_KINDS:
            stamp = self._sensor_stamps[kind]
            out[f"{kind}_age_s"] = "never" if stamp is None or now is None else f"{now - stamp:.3f}"
        for reason in sorted(self.counts):
            out[f"count.{reason}"] = str(self.counts[reason])
        return out
