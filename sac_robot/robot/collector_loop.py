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
from sac_robot.robot.pipeline import Pipeline, RobotRunConfig
from sac_robot.robot.robot_step import RobotStep, Signals
from sac_robot.robot.safety import SafetyLayer
from sac_robot.robot.state import RobotState
from sac_robot.robot.unacked import UnackedStore

__all__ = ["CollectorLoop", "Signals", "StepResult", "spill_dir"]


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
    action: np.ndarray  # executed
    intervened: bool


@dataclass
class EpisodeStats:
    ret: float = 0.0
    length: int = 0
    evaluating: bool = False
    eval_returns: list[float] = field(default_factory=list)
    eval_lengths: list[int] = field(default_factory=list)


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
        self.robot = RobotStep(pipe, safety)
        self.max_episode_steps = self.robot.max_steps
        self.ep = EpisodeStats()
        self.pending: _Pending | None = None

    @property
    def prev_action(self) -> np.ndarray:
        """The last executed action (zero at an episode's start)."""
        return self.robot.previous

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

    # --- the step --------------------------------------------------------------------------------
    def step(self, state: RobotState, signals: Signals | None, now: float) -> StepResult:
        blind = self.safety.blind_reasons(state, now)  # once per step: the safety filter below reuses it
        if blind:
            # Stale or broken sensors: the safe command, and no transition from data that is not the robot's
            # present; the episode in progress ends here (the next trusted state starts a new one).
            safe = self.robot.safe_hold(state, now, blind)
            self.abort_episode()
            return StepResult(command=safe.command, intervened=True, blind=True)
        if self.pending is None and self._already_over(signals):
            # Real time: the stand-in's episode ended while no step of ours was in flight (e.g. during a hold):
            # nothing to learn from it, just start a new one.
            self.abort_episode()
            return StepResult(command=None, reset=True)
        obs = self.robot.observe(state)
        result = StepResult(command=None)
        if self.pending is not None:
            out = self.robot.outcome(state, signals, self.ep.length)
            reward, terminated, truncated = out.reward, out.terminated, out.truncated
            p = self.pending
            if not self.ep.evaluating:
                self._queue(p.obs, p.action, reward, obs, terminated, truncated, p.intervened)
            self.ep.ret += reward
            self.ep.length += 1
            if terminated or truncated:
                self._end_episode(result)
                result.episode["end"] = "terminated" if terminated else "time limit"
                return result
        safe, executed = self.robot.act(self._choose(obs), state, now, blind)
        self.pending = _Pending(obs, executed, safe.intervened)
        result.command = safe.command
        result.intervened = safe.intervened
        return result

    def _already_over(self, signals: Signals | None) -> bool:
        return (
            self.cfg.termination == "privileged" and signals is not None and (signals.terminated or signals.truncated)
        )

    def _end_episode(self, result: StepResult) -> None:
        ep = self.ep
        result.reset = True
        self.pending = None
        self.robot.start_episode()
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

    def reset_command(self, routine_command: np.ndarray | None, state: RobotState, now: float) -> np.ndarray:
        """What to send while the reset routine runs: its command (or holding the measured pose) through the
        safety layer, so standing up obeys the same limits as walking."""
        if routine_command is None:
            position = self.cfg.action.mode == "position"
            routine_command = state.joint_position if position else np.zeros(self.pipe.act_dim)
        return self.safety.filter(routine_command, state, now).command

    def reset_done(self, state: RobotState | None) -> None:
        """A reset finished: a new episode starts, the safety layer's rate limits ramp from the measured pose."""
        self.abort_episode()
        self.safety.reset_filter(state.joint_position if state is not None else None)

    def abort_episode(self) -> None:
        """Drop the transition in flight (e.g. the robot was reset or e-stopped mid-step)."""
        self.pending = None
        self.robot.start_episode()
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
