# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The collector's control step without ROS: observation → action → safe command → transition.

Each call to `step` receives the newest complete robot state and returns the command to publish
(or a request to reset). Transitions are numbered per (collector id, epoch) and queued for the
learner; they stay in `unacked` until the learner confirms they are on disk, so a learner restart
loses nothing. Evaluation episodes (deterministic actions) are run between training episodes and
never stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sac_robot.core.wire import TransitionBatch
from sac_robot.policy_runtime import FrozenPolicy
from sac_robot.robot.description import RobotDescription
from sac_robot.robot.pipeline import Pipeline, RobotRunConfig
from sac_robot.robot.rewards import RewardConfig, compute_reward
from sac_robot.robot.safety import SafetyLayer
from sac_robot.robot.state import RobotState
from sac_robot.robot.terminations import TerminationConfig, check_fall
from sac_robot.robot.unacked import UnackedStore


@dataclass
class Signals:
    """The stand-in's privileged reward/terminated/truncated for the step that produced a state."""

    reward: float
    terminated: bool
    truncated: bool


@dataclass
class StepResult:
    command: np.ndarray | None  # None: publish nothing new (episode over, waiting for reset)
    reset: bool = False
    episode: dict | None = None  # summary of an episode that just ended
    eval_round: dict | None = None  # summary of a finished evaluation round
    intervened: bool = False
    blind: bool = False  # the state could not be trusted: safe command, the episode in progress was dropped


@dataclass
class _Pending:
    obs: np.ndarray
    action: np.ndarray
    intervened: bool
    previous: np.ndarray  # the action before this one, for the action-rate reward


@dataclass
class EpisodeStats:
    ret: float = 0.0
    length: int = 0
    evaluating: bool = False
    eval_returns: list[float] = field(default_factory=list)
    eval_lengths: list[int] = field(default_factory=list)


def max_episode_steps(cfg: RobotRunConfig) -> int:
    """Control steps after which an episode is truncated (as CollectorLoop computes it)."""
    return max(1, round(cfg.episode_seconds * cfg.control_rate_hz))


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
) -> tuple[float, bool, bool]:
    """(reward, terminated, truncated) of the step that produced ``state`` after executing ``action``.

    The stand-in's privileged signals or the configured termination and reward terms; truncation after ``max_steps`` steps (``episode_length`` counts the
    steps before this one); terminated wins over truncated.
    """
    if cfg.termination == "privileged":
        if signals is None:
            raise ValueError("termination 'privileged' needs the stand-in's privileged/step signals")
        terminated, truncated = signals.terminated, signals.truncated
    else:
        assert isinstance(cfg.termination, TerminationConfig)
        terminated, truncated = check_fall(cfg.termination, state) is not None or safety_fell is not None, False
    if cfg.reward == "privileged":
        if signals is None:
            raise ValueError("reward 'privileged' needs the stand-in's privileged/step signals")
        reward = signals.reward
    else:
        assert isinstance(cfg.reward, RewardConfig)
        reward, _ = compute_reward(cfg.reward, description, state, action, previous_action, terminated)
    truncated = truncated or (episode_length + 1 >= max_steps)
    return float(reward), bool(terminated), bool(truncated and not terminated)


def spill_dir(cfg: RobotRunConfig, collector_id: str, epoch: int) -> Path:
    """Where this collector run spills unacknowledged transitions: robot.spill_dir, by default under
    $XDG_STATE_HOME (~/.local/state) so it survives reboots of the robot computer."""
    root = (
        Path(cfg.spill_dir)
        if cfg.spill_dir
        else Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "sac_robot" / "spill"
    )
    safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in collector_id)
    return root / f"{safe_id}_{epoch}"


class CollectorLoop:
    def __init__(
        self,
        pipe: Pipeline,
        safety: SafetyLayer,
        collector_id: str,
        epoch: int,
        seed: int = 0,
    ) -> None:
        self.pipe = pipe
        self.cfg = pipe.cfg
        self.safety = safety
        self.collector_id, self.epoch = collector_id, epoch
        self.rng = np.random.default_rng(seed)
        self.policy: FrozenPolicy | None = None
        self.policy_version = 0
        self.next_seq = 0
        self.outbox: list[tuple] = []
        self.unacked = UnackedStore(
            spill_dir(self.cfg, collector_id, epoch), self.cfg.unacked_memory, self.cfg.unacked_limit
        )
        self.acked_seq = -1
        self.steps = 0  # training transitions produced
        self.steps_since_eval = 0
        self.episodes = 0
        self.max_episode_steps = max_episode_steps(self.cfg)
        self.ep = EpisodeStats()
        self.pending: _Pending | None = None
        self.prev_action = np.zeros(pipe.act_dim)

    # --- policy ----------------------------------------------------------------------------------
    def set_policy(self, policy: FrozenPolicy, version: int) -> None:
        """Called between steps only, so an action is never computed by half an old policy."""
        if policy.obs_dim != self.pipe.obs_dim or policy.act_dim != self.pipe.act_dim:
            raise ValueError(
                f"policy dims ({policy.obs_dim}, {policy.act_dim}) do not match ({self.pipe.obs_dim}, {self.pipe.act_dim})"
            )
        self.policy, self.policy_version = policy, version

    def _choose(self, obs: np.ndarray) -> np.ndarray:
        if self.policy is None:  # learning has not started: uniform random actions
            return self.rng.uniform(-1.0, 1.0, self.pipe.act_dim)
        if self.ep.evaluating:
            return self.policy.act(obs)
        return self.policy.sample(obs, self.rng)

    # --- reward and termination -----------------------------------------------------------------
    def _outcome(self, state: RobotState, signals: Signals | None, safety_fell: str | None) -> tuple[float, bool, bool]:
        p = self.pending
        return episode_outcome(
            self.cfg,
            self.pipe.description,
            state,
            signals,
            p.action,
            p.previous,
            self.ep.length,
            self.max_episode_steps,
            safety_fell,
        )

    # --- the step --------------------------------------------------------------------------------
    def step(self, state: RobotState, signals: Signals | None, now: float) -> StepResult:
        blind = self.safety.blind_reasons(state, now)  # once per step: the safety filter below reuses it
        if blind:
            # Stale or broken sensors: the safe command, and no transition from data that is not the robot's
            # present; the episode in progress ends here (the next trusted state starts a new one).
            safe = self.safety.filter(self.prev_action_command(), state, now, blind)
            self.abort_episode()
            return StepResult(command=safe.command, intervened=True, blind=True)
        obs = self.pipe.observation.build(state, self.prev_action)
        result = StepResult(command=None)
        if self.pending is not None:
            reward, terminated, truncated = self._outcome(state, signals, None)
            p = self.pending
            if not self.ep.evaluating:
                self._queue(p.obs, p.action, reward, obs, terminated, truncated, p.intervened)
            self.ep.ret += reward
            self.ep.length += 1
            if terminated or truncated:
                self._end_episode(result)
                result.episode["end"] = "terminated" if terminated else "time limit"
                return result
        action = self._choose(obs)
        safe = self.safety.filter(self.pipe.action_to_command(action), state, now, blind)
        executed = self.pipe.command_to_action(safe.command)
        self.pending = _Pending(obs, executed, safe.intervened, self.prev_action)
        self.prev_action = executed
        result.command = safe.command
        result.intervened = safe.intervened
        return result

    def _end_episode(self, result: StepResult) -> None:
        ep = self.ep
        result.reset = True
        self.pending = None
        self.prev_action = np.zeros(self.pipe.act_dim)
        if ep.evaluating:
            ep.eval_returns.append(ep.ret)
            ep.eval_lengths.append(ep.length)
            result.episode = {"kind": "eval", "return": ep.ret, "length": ep.length}
        else:
            self.episodes += 1
            result.episode = {"kind": "train", "return": ep.ret, "length": ep.length, "steps": self.steps}
        evaluating = ep.evaluating
        if evaluating and len(ep.eval_returns) >= self.cfg.eval_episodes:
            result.eval_round = {
                "kind": "eval_round",
                "returns": ep.eval_returns,
                "lengths": ep.eval_lengths,
                "collector_steps": self.steps,
                "policy_version": self.policy_version,
            }
            evaluating = False
            self.steps_since_eval = 0
        elif not evaluating and self._eval_due():
            evaluating = True
        returns, lengths = (ep.eval_returns, ep.eval_lengths) if evaluating else ([], [])
        self.ep = EpisodeStats(evaluating=evaluating, eval_returns=returns, eval_lengths=lengths)
        result.episode["collector_id"] = self.collector_id

    def _eval_due(self) -> bool:
        return (
            self.cfg.eval_episodes > 0
            and self.policy is not None
            and self.steps_since_eval >= self.cfg.eval_every_steps
        )

    def hold(self, state: RobotState | None, now: float, reason: str) -> StepResult:
        """Safe mode for a reason of the node's (the learner is gone): no transition, the episode ends here."""
        safe = self.safety.hold(state, now, reason)
        self.abort_episode()
        return StepResult(command=safe.command, intervened=True, blind=True)

    def prev_action_command(self) -> np.ndarray:
        """The last action as a command (what the safety layer replaces with its safe mode when blind)."""
        return self.pipe.action_to_command(self.prev_action)

    def abort_episode(self) -> None:
        """Drop the transition in flight (e.g. the robot was reset or e-stopped mid-step)."""
        self.pending = None
        self.prev_action = np.zeros(self.pipe.act_dim)
        self.ep = EpisodeStats(
            evaluating=self.ep.evaluating, eval_returns=self.ep.eval_returns, eval_lengths=self.ep.eval_lengths
        )

    # --- transitions out -------------------------------------------------------------------------
    def _queue(self, obs, action, reward, next_obs, terminated, truncated, intervened) -> None:
        self.outbox.append((obs, action, reward, next_obs, terminated, truncated, intervened))
        self.steps += 1
        self.steps_since_eval += 1

    def take_batch(self, force: bool = False) -> TransitionBatch | None:
        """A batch to send once send_batch transitions are queued (or anything queued when forced)."""
        if not self.outbox or (len(self.outbox) < self.cfg.send_batch and not force):
            return None
        cols = list(zip(*self.outbox))
        arrays = {
            "obs": np.asarray(cols[0], np.float32),
            "action": np.asarray(cols[1], np.float32),
            "reward": np.asarray(cols[2], np.float32),
            "next_obs": np.asarray(cols[3], np.float32),
            "terminated": np.asarray(cols[4], np.float32),
            "truncated": np.asarray(cols[5], np.float32),
            "intervened": np.asarray(cols[6], np.float32),
        }
        batch = TransitionBatch(self.collector_id, self.epoch, self.next_seq, arrays)
        self.next_seq += batch.count
        self.outbox = []
        self.unacked.append(batch)  # memory, then the robot's disk; bounded, the oldest dropped and counted
        return batch

    @property
    def unacked_count(self) -> int:
        return self.unacked.count

    @property
    def dropped_unacked(self) -> int:
        return self.unacked.dropped

    def on_ack(self, acked_seq: int) -> None:
        self.acked_seq = max(self.acked_seq, acked_seq)
        self.unacked.acknowledge(self.acked_seq)
