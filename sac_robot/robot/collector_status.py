# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""What a collector reports about itself once a second (its /diagnostics entry): level, one-line message and
key/values from the safety layer, the reset routine, the control loop, the learner link and the control
timing. Plain Python, so what an operator reads is testable without ROS."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sac_robot.robot.collector_loop import CollectorLoop
from sac_robot.robot.control_timing import ControlTiming
from sac_robot.robot.learner_link import LearnerLink
from sac_robot.robot.reset import ResetPhase, ResetRoutine
from sac_robot.robot.safety import SafetyLayer


@dataclass
class CollectorParts:
    """The plain-Python parts of one configured collector."""

    loop: CollectorLoop
    safety: SafetyLayer
    reset: ResetRoutine
    link: LearnerLink
    timing: ControlTiming
    lockstep: bool


def reset_stats(reset: ResetRoutine, now: float) -> dict[str, object]:
    """The reset routine's running statistics, as each episode summary carries them to the learner."""
    stats = reset.statistics(now)
    return {
        "resets_done": stats.resets_done,
        "time_resetting_s": stats.time_resetting_s,
        "resets_per_hour": stats.resets_per_hour,
        "waits_for_person": stats.waits_for_person,
        "reasons": stats.reasons,
    }


def collector_status(
    parts: CollectorParts,
    counters: dict[str, int],
    extra: dict[str, str],
    extra_level: int,
    reset_status: str,
    armed: bool,
    now: float,
) -> tuple[int, str, dict[str, object]]:
    """(level 0-2, message, values); ``extra`` and ``extra_level`` come from the node (its QoS watch)."""
    loop, safety, reset, link = parts.loop, parts.safety, parts.reset, parts.link
    values: dict[str, object] = {**counters, "lag_waits": link.lag_waits, **safety.diagnostics(), **extra}
    stats = reset.statistics(now)
    values.update(
        lifecycle="active" if armed else "inactive (not armed: sac-robot arm)",
        reset_phase=str(reset.phase),
        reset_status=reset_status,
        resets_done=stats.resets_done,
        reset_time_s=f"{stats.time_resetting_s:.1f}",
        resets_per_hour=f"{stats.resets_per_hour:.1f}",
        reset_reasons=json.dumps(stats.reasons),
        waits_for_person=stats.waits_for_person,
        transitions=loop.steps,
        episodes=loop.episodes,
        unacked=loop.unacked_count,
        dropped_unacked=loop.dropped_unacked,
        spilled_to_disk=loop.unacked.spilled_count,
        policy_version=loop.policy_version,
        learner=link.status(now, loop.unacked_count, loop.policy is not None),
    )
    waiting_for_person = reset.phase == ResetPhase.WAIT_FOR_PERSON
    level = max(int(safety.status_level()), 1 if waiting_for_person else 0, extra_level)
    message = safety.status_message()
    if not parts.lockstep:
        values.update(parts.timing.diagnostics())
        missed = parts.timing.new_misses()
        if missed:
            level = max(level, 1)
            message += f"; {missed} missed control deadline(s) since the last report"
    if not armed:
        level, message = max(level, 1), f"not armed (inactive); {message}"
    return level, message, values
