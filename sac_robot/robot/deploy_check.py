# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""What the deploy node needs besides ROS: the policy/robot compatibility check, the control step and
latency statistics. numpy only (no torch), so a robot computer runs it without the learning stack.

A frozen policy records how it was trained (docs/policy_format.md): the joint names in command order,
the observation layout, the control rate, the action mapping and its dimensions. A policy driven
with a different joint order, observation vector or rate still runs, but does something nobody
trained; `check_compatibility` lists every such difference and the node refuses to start on any.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from sac_robot.policy_runtime import FrozenPolicy
from sac_robot.robot.box2d_walker import WalkerObservation
from sac_robot.robot.pipeline import Pipeline
from sac_robot.robot.robot_step import RobotStep
from sac_robot.robot.safety import SafetyLayer, SafetyResult
from sac_robot.robot.state import RobotState

RATE_RTOL = 1e-6


class PolicyMismatchError(ValueError):
    """The policy was not trained for this robot configuration; the message lists every difference."""

    def __init__(self, source: str, differences: list[str]) -> None:
        self.source = source
        self.differences = list(differences)
        lines = "\n  ".join(self.differences)
        super().__init__(f"policy {source} does not match the robot configuration:\n  {lines}")


def pipeline_policy_info(pipe: Pipeline) -> dict[str, Any]:
    """The fields a policy exported for this pipeline carries (and that the deploy check compares)."""
    return {
        "joint_names": list(pipe.description.joint_names),
        "robot": pipe.description.name,
        "obs_layout": [[str(t), int(s), int(e)] for t, s, e in pipe.observation.layout],
        "control_rate_hz": float(pipe.cfg.control_rate_hz),
        "action_mode": pipe.cfg.action.mode,
        "action_scale": _scale_value(pipe.cfg.action.scale),
    }


def observation_needs(pipe: Pipeline) -> tuple[str, ...]:
    """Robot topics the observation reads (a deployed policy computes no reward, so nothing more)."""
    if isinstance(pipe.observation, WalkerObservation):
        return tuple(pipe.observation.needs)
    terms = set(pipe.observation.config.terms)
    needs = ["joint_states", "imu"]
    if "base_linear_velocity" in terms:
        needs.append("odom")
    if "foot_contact" in terms:
        needs.append("foot_contacts")
    return tuple(needs)


def _describe_joints(policy: list[str], robot: list[str]) -> str:
    if sorted(policy) == sorted(robot):
        i = next(k for k, (a, b) in enumerate(zip(policy, robot)) if a != b)
        return (
            f"joint_names: same joints in a different order (first difference at index {i}: policy {policy[i]!r}, "
            f"robot {robot[i]!r}); policy order {policy}, robot order {robot}"
        )
    missing = [n for n in robot if n not in policy]
    extra = [n for n in policy if n not in robot]
    parts = []
    if missing:
        parts.append(f"robot joints the policy does not know: {missing}")
    if extra:
        parts.append(f"policy joints the robot does not have: {extra}")
    if not parts:  # same names, different multiplicity
        parts.append(f"policy {policy}, robot {robot}")
    return "joint_names: " + "; ".join(parts)


def _layout(value: Any) -> list[tuple[str, int, int]]:
    return [(str(t), int(s), int(e)) for t, s, e in value]


def _describe_layout(policy: list[tuple[str, int, int]], robot: list[tuple[str, int, int]]) -> str:
    p_terms, r_terms = [t for t, _, _ in policy], [t for t, _, _ in robot]
    if p_terms != r_terms:
        return f"obs_layout: policy terms {p_terms}, robot terms {r_terms}"
    for p, r in zip(policy, robot):
        if p != r:
            return f"obs_layout: term {p[0]!r} spans [{p[1]}, {p[2]}) in the policy, [{r[1]}, {r[2]}) on the robot"
    return f"obs_layout: policy {policy}, robot {robot}"  # unreachable when the lists differ


def check_compatibility(meta: dict[str, Any], pipe: Pipeline, control_rate_hz: float | None = None) -> list[str]:
    """Every way the policy metadata differs from this robot pipeline (empty: compatible).

    ``control_rate_hz`` is the rate the node will run at (default: the pipeline's).
    """
    expected = pipeline_policy_info(pipe)
    rate = float(pipe.cfg.control_rate_hz if control_rate_hz is None else control_rate_hz)
    out: list[str] = []
    origin = f" (exported from env {meta['env_id']!r} without a robot section?)" if "env_id" in meta else ""

    for key in ("joint_names", "obs_layout", "control_rate_hz"):
        if key not in meta:
            out.append(f"{key}: missing from the policy metadata{origin}; export it from a run with a robot section")

    if int(meta.get("obs_dim", -1)) != pipe.obs_dim:
        out.append(f"obs_dim: policy {meta.get('obs_dim')}, robot observation {pipe.obs_dim}")
    if int(meta.get("act_dim", -1)) != pipe.act_dim:
        out.append(f"act_dim: policy {meta.get('act_dim')}, robot joints {pipe.act_dim}")

    if "joint_names" in meta:
        names = [str(n) for n in meta["joint_names"]]
        if names != expected["joint_names"]:
            out.append(_describe_joints(names, expected["joint_names"]))
    if "obs_layout" in meta:
        try:
            layout = _layout(meta["obs_layout"])
        except (TypeError, ValueError):
            out.append(f"obs_layout: unreadable in the policy ({meta['obs_layout']!r})")
        else:
            robot_layout = _layout(expected["obs_layout"])
            if layout != robot_layout:
                out.append(_describe_layout(layout, robot_layout))
    if "control_rate_hz" in meta:
        trained = float(meta["control_rate_hz"])
        if not math.isclose(trained, rate, rel_tol=RATE_RTOL):
            out.append(f"control_rate_hz: policy trained at {trained:g} Hz, robot runs at {rate:g} Hz")
    if "action_mode" in meta and meta["action_mode"] != expected["action_mode"]:
        out.append(f"action_mode: policy {meta['action_mode']!r}, robot {expected['action_mode']!r}")
    if "action_scale" in meta and expected["action_mode"] == "position":
        trained_scale, robot_scale = _scale_value(meta["action_scale"]), expected["action_scale"]
        n = len(expected["joint_names"])
        sizes = {len(v) for v in (trained_scale, robot_scale) if isinstance(v, list)}
        same = sizes <= {n} and np.allclose(
            np.broadcast_to(np.asarray(trained_scale, float), (n,)),
            np.broadcast_to(np.asarray(robot_scale, float), (n,)),
            rtol=RATE_RTOL,
            atol=0.0,
        )
        if not same:
            out.append(f"action_scale: policy {trained_scale} rad, robot {robot_scale} rad")
    return out


def _scale_value(scale: float | list[float]) -> float | list[float]:
    """An action scale as metadata holds it: one number, or one per joint."""
    return [float(v) for v in scale] if isinstance(scale, list | tuple) else float(scale)


def require_compatible(
    policy: FrozenPolicy, pipe: Pipeline, control_rate_hz: float | None = None, source: str = "<policy>"
) -> None:
    """Raise PolicyMismatchError listing every difference; return quietly when the policy fits."""
    meta = {**policy.meta, "obs_dim": policy.obs_dim, "act_dim": policy.act_dim}
    differences = check_compatibility(meta, pipe, control_rate_hz)
    if differences:
        raise PolicyMismatchError(source, differences)


class DeployStep:
    """One control step of a deployed policy: state → observation → action → command → safety layer.

    The previous-action observation term holds the action as executed (after the safety layer), as the
    collector records it during training.
    """

    def __init__(self, pipe: Pipeline, policy: FrozenPolicy, safety: SafetyLayer) -> None:
        self.pipe, self.policy, self.safety = pipe, policy, safety
        self.robot = RobotStep(pipe, safety)
        self.steps = 0

    @property
    def prev_action(self) -> np.ndarray:
        return self.robot.previous

    def step(self, state: RobotState, now: float) -> SafetyResult:
        result, _ = self.robot.act(self.policy.act(self.robot.observe(state)), state, now)
        self.steps += 1
        return result


class LatencyWindow:
    """Recent samples (seconds) and their percentiles, for diagnostics."""

    def __init__(self, size: int = 200) -> None:
        self.samples: deque[float] = deque(maxlen=max(1, int(size)))
        self.total = 0

    def add(self, seconds: float) -> None:
        if math.isfinite(seconds):
            self.samples.append(float(seconds))
            self.total += 1

    def stats_ms(self) -> dict[str, float]:
        """p50, p99 and max in milliseconds over the window (NaN while empty), and the sample count."""
        if not self.samples:
            return {"p50": math.nan, "p99": math.nan, "max": math.nan, "n": 0}
        a = np.fromiter(self.samples, dtype=np.float64) * 1e3
        p50, p99 = np.percentile(a, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": float(a.max()), "n": len(a)}
