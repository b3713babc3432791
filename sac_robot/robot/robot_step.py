# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""One robot step, the same on every path: action → command → safety layer → executed action, and
state → observation, reward, termination.

The collector loop (a robot or stand-in through ROS), the gymnasium view of a ROS robot, the in-process
legged env and the PyBullet stand-in's privileged reward all call this module, so a policy trained in
process saw the same limits, filters and reward as the robot it is deployed on. What the learner stores
is the *executed* action (the command mapped back to [-1, 1]) and the previous-action observation term
is the executed one too: the robot did that, not what the policy asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from sac_robot.robot.description import RobotDescription
from sac_robot.robot.pipeline import Pipeline, RobotRunConfig
from sac_robot.robot.rewards import RewardConfig, compute_reward
from sac_robot.robot.safety import SafetyLayer, SafetyResult
from sac_robot.robot.state import RobotState
from sac_robot.robot.terminations import TerminationConfig, check_fall


@dataclass
class Signals:
    """The stand-in's privileged reward/terminated/truncated for the step that produced a state."""

    reward: float
    terminated: bool
    truncated: bool


@dataclass
class Outcome:
    """What the step that produced a state earned and whether the episode ends there."""

    reward: float
    terminated: bool
    truncated: bool
    terms: dict[str, float] = field(default_factory=dict)  # reward terms (empty for privileged rewards)
    fall_reason: str | None = None


def complete_stamp(needs: Iterable[str], stamps: Mapping[str, float], last: float) -> float | None:
    """Lockstep: the stamp every needed topic's newest message shares, when it is newer than the last step's
    (a step's state is complete); None while a topic is missing, stamps differ or nothing is new."""
    shared = set()
    for key in needs:
        if key not in stamps:
            return None
        shared.add(stamps[key])
    if len(shared) != 1:
        return None
    stamp = shared.pop()
    return stamp if stamp > last else None


def max_episode_steps(cfg: RobotRunConfig) -> int:
    """Control steps after which an episode is truncated."""
    return max(1, round(cfg.episode_seconds * cfg.control_rate_hz))


def reward_and_fall(
    reward_cfg: RewardConfig,
    termination_cfg: TerminationConfig,
    description: RobotDescription,
    state: RobotState,
    action: np.ndarray,
    previous_action: np.ndarray,
    safety_fell: str | None = None,
) -> tuple[float, dict[str, float], str | None]:
    """(reward, reward terms, fall reason or None) of reaching ``state`` by executing ``action``."""
    fall = check_fall(termination_cfg, state) or safety_fell
    reward, terms = compute_reward(reward_cfg, description, state, action, previous_action, fell=fall is not None)
    return float(reward), terms, fall


def episode_outcome(
    cfg: RobotRunConfig,
    description: RobotDescription,
    state: RobotState,
    signals: Signals | None,
    action: np.ndarray,
    previous_action: np.ndarray,
    episode_length: int,
    max_steps: int,
    safety_fell: str | None = None,
) -> Outcome:
    """The outcome of the step that produced ``state`` after executing ``action``.

    The stand-in's privileged signals or the configured termination and reward terms; truncation after
    ``max_steps`` steps (``episode_length`` counts the steps before this one); terminated wins over truncated.
    """
    if (cfg.termination == "privileged" or cfg.reward == "privileged") and signals is None:
        raise ValueError("reward or termination 'privileged' needs the stand-in's privileged/step signals")
    terms: dict[str, float] = {}
    fall: str | None = None
    if cfg.termination == "privileged":
        assert signals is not None
        terminated, truncated = signals.terminated, signals.truncated
    else:
        assert isinstance(cfg.termination, TerminationConfig)
        fall = check_fall(cfg.termination, state) or safety_fell
        terminated, truncated = fall is not None, False
    if cfg.reward == "privileged":
        assert signals is not None
        reward = signals.reward
    else:
        assert isinstance(cfg.reward, RewardConfig)
        reward, terms = compute_reward(cfg.reward, description, state, action, previous_action, terminated)
    truncated = truncated or (episode_length + 1 >= max_steps)
    return Outcome(float(reward), bool(terminated), bool(truncated and not terminated), terms, fall)


class RobotStep:
    """The robot side of a control step, holding the one piece of state it needs: the executed actions.

    Per step: ``observe(state)`` → the policy acts → ``act(action, state, now)`` sends the returned command →
    the next state arrives → ``outcome(state, ...)``. ``start_episode`` after every reset.
    """

    def __init__(self, pipe: Pipeline, safety: SafetyLayer) -> None:
        self.pipe, self.safety = pipe, safety
        self.max_steps = max_episode_steps(pipe.cfg)
        self.previous = np.zeros(pipe.act_dim)  # the last executed action (observation term, action rate)
        self._before = np.zeros(pipe.act_dim)  # the one before it (for the outcome of the last step)

    def start_episode(self, pose: np.ndarray | None = None) -> None:
        """A new episode: no previous action; with ``pose`` the safety layer's rate limits ramp from it."""
        self.previous = np.zeros(self.pipe.act_dim)
        self._before = np.zeros(self.pipe.act_dim)
        if pose is not None:
            self.safety.reset_filter(pose)

    def observe(self, state: RobotState) -> np.ndarray:
        """The policy's input: the state and the last executed action (not the last one asked for)."""
        return self.pipe.observation.build(state, self.previous)

    def act(
        self, action: np.ndarray, state: RobotState | None, now: float, blind: list[str] | None = None
    ) -> tuple[SafetyResult, np.ndarray]:
        """The safe command for a policy action and the action it amounts to (what is stored for learning)."""
        safe = self.safety.filter(self.pipe.action_to_command(action), state, now, blind)
        executed = self.pipe.command_to_action(safe.command)
        self._before, self.previous = self.previous, executed
        return safe, executed

    def outcome(
        self, state: RobotState, signals: Signals | None, episode_length: int, safety_fell: str | None = None
    ) -> Outcome:
        """Reward and episode end of the last ``act`` now that its result, ``state``, has arrived."""
        return episode_outcome(
            self.pipe.cfg,
            self.pipe.description,
            state,
            signals,
            self.previous,
            self._before,
            episode_length,
            self.max_steps,
            safety_fell,
        )

    def safe_hold(self, state: RobotState | None, now: float, blind: list[str]) -> SafetyResult:
        """The safety layer's safe command while the state cannot be trusted; the episode in progress ends."""
        safe = self.safety.filter(self.pipe.action_to_command(self.previous), state, now, blind)
        self.start_episode()
        return safe
