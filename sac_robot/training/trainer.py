# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""`sac-robot train`: SAC in-process on a gymnasium environment, the reference path for the ROS one.

Run directory layout (the ROS learner writes the same):
    config.yaml        resolved configuration
    progress.csv       one row per evaluation
    tb/                TensorBoard event files
    checkpoints/       ckpt_<env_steps>.safetensors, the newest few
    replay/            append-only replay chunks
    policy.safetensors the final frozen policy

Every episode is reset with seed ``train.seed + episode index`` and all random generators are in the
checkpoint, so a run resumed from a checkpoint taken at an episode boundary continues exactly as the
uninterrupted run would have.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from sac_robot.core.atomic_io import atomic_write_text
from sac_robot.core.checkpoint import CheckpointManager
from sac_robot.core.config import Config, ConfigError, validate_config
from sac_robot.core.export import export_policy
from sac_robot.core.replay import ChunkStore, ReplayBuffer
from sac_robot.core.sac import SAC
from sac_robot.core.utd import actor_update_due, updates_due
from sac_robot.envs import ROBOT_KWARGS, make_env
from sac_robot.training.evaluate import EVAL_SEED_OFFSET, rollout
from sac_robot.training.export_cli import robot_policy_info
from sac_robot.training.run_log import RunLog

log = logging.getLogger(__name__)


def prepare_run_dir(run_dir: Path, cfg: Config | None, resume: bool, total_steps: int | None = None) -> Config:
    """Create or reopen a run directory; a resumed run keeps the config it was started with."""
    saved = run_dir / "config.yaml"
    if resume:
        if not saved.is_file():
            raise FileNotFoundError(f"--resume: {run_dir} holds no run (no config.yaml)")
        resumed = validate_config(yaml.safe_load(saved.read_text(encoding="utf-8")), str(saved))
        if total_steps is not None:  # only the length of the run may change on resume
            resumed.train.total_steps = total_steps
        return resumed
    if cfg is None:
        raise ConfigError("a config is required to start a new run")
    if any((run_dir / name).exists() for name in ("config.yaml", "progress.csv", "checkpoints", "replay")):
        raise FileExistsError(
            f"{run_dir} already holds a run: pass --resume to continue it or choose another --run-dir"
        )
    return cfg


def write_run_config(run_dir: Path, cfg: Config) -> None:
    """A new run's config.yaml, written once the config has proven it builds (a refused one leaves no run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())


class Trainer:
    def __init__(
        self,
        cfg: Config | None,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        total_steps: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.cfg = prepare_run_dir(self.run_dir, cfg, resume, total_steps)
        c = self.cfg
        twice = sorted(ROBOT_KWARGS & set(c.env.kwargs)) if c.robot is not None else []
        if resume and twice:
            raise ConfigError(
                f"{self.run_dir / 'config.yaml'} (the run's saved config) was written before configs named their "
                f"robot once: delete {twice} from its env.kwargs (its robot section holds the same values) to resume; "
                "the in-process env now runs the robot section's safety layer."
            )
        self.env = make_env(c.env, robot=c.robot)
        self.eval_env = make_env(c.env, robot=c.robot)
        if not resume:
            write_run_config(self.run_dir, c)
        obs_dim = self.env.observation_space.shape[0]
        act_dim = self.env.action_space.shape[0]
        self.agent = SAC(obs_dim, act_dim, self.env.action_space.low, self.env.action_space.high, c.sac, c.train.seed)
        self.policy_info = self._robot_policy_info(obs_dim, act_dim)
        self.buffer = ReplayBuffer(c.replay.capacity, obs_dim, act_dim)
        self.store = ChunkStore(self.run_dir / "replay") if c.replay.persist else None
        self.ckpts = CheckpointManager(self.run_dir, keep=c.train.keep_checkpoints)
        self.sample_rng = np.random.default_rng(c.train.seed + 2)
        self.action_rng = np.random.default_rng(c.train.seed + 3)
        self.env.action_space.seed(c.train.seed)
        self.step = 0
        self.episodes = 0
        self.train_returns: deque[float] = deque(maxlen=10)
        self.elapsed_s = 0.0
        self.show_progress = progress
        if resume:
            self._restore()

    # --- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, at_episode_boundary: bool) -> Path:
        if self.store is not None:
            self.buffer.persist(self.store, self.cfg.replay.chunk_size, final=True)
        tensors, meta = self.agent.state_dict()
        meta["trainer"] = {
            "step": self.step,
            "episodes": self.episodes,
            "train_returns": list(self.train_returns),
            "elapsed_s": self.elapsed_s,
            "buffer_total": self.buffer.total,
            "at_episode_boundary": at_episode_boundary,
            "sample_rng": self.sample_rng.bit_generator.state,
            "action_rng": self.action_rng.bit_generator.state,
        }
        path = self.ckpts.save(self.step, tensors, meta)
        log.info("checkpoint %s", path)
        return path

    def _restore(self) -> None:
        tensors, meta, path = self.ckpts.load_latest()
        self.agent.load_state_dict(tensors, meta)
        t = meta["trainer"]
        self.step, self.episodes, self.elapsed_s = t["step"], t["episodes"], t["elapsed_s"]
        self.train_returns.extend(t["train_returns"])
        self.sample_rng.bit_generator.state = t["sample_rng"]
        self.action_rng.bit_generator.state = t["action_rng"]
        if self.store is not None:
            self.buffer.restore(self.store, upto=t["buffer_total"])
        elif t["buffer_total"]:
            log.warning("replay.persist is off: resuming %s with an empty replay buffer", path)
        log.info("resumed from %s at step %d", path, self.step)

    # --- the loop ---------------------------------------------------------------------------------
    def _act(self, obs: np.ndarray) -> np.ndarray:
        if self.step < self.cfg.sac.learning_starts:
            space = self.env.action_space
            return self.action_rng.uniform(space.low, space.high).astype(np.float64)
        return self.agent.act(obs)

    def _learn(self) -> dict[str, torch.Tensor]:
        """The updates core/utd.py's rule allows for the data stored so far (utd per step once learning starts)."""
        sac = self.cfg.sac
        metrics: dict[str, torch.Tensor] = {}
        while self.agent.updates < updates_due(self.step, sac.utd, sac.learning_starts, sac.batch_size):
            batch = self.buffer.sample(sac.batch_size, self.sample_rng)
            update_actor = actor_update_due(self.agent.updates, sac.utd, sac.actor_updates_per_step)
            metrics.update(self.agent.update(batch, update_actor=update_actor))
        return metrics

    def evaluate(self) -> dict[str, float]:
        c = self.cfg.train
        policy = lambda o: self.agent.act(o, deterministic=True)
        return rollout(self.eval_env, policy, c.eval_episodes, c.seed + EVAL_SEED_OFFSET).summary()

    def run(self) -> dict[str, float]:
        """Train to ``train.total_steps``; Ctrl-C saves a checkpoint and re-raises."""
        c = self.cfg
        total = c.train.total_steps
        runlog = RunLog(self.run_dir)
        bar = _progress_bar(total, self.step, self.show_progress)
        obs, _ = self.env.reset(seed=c.train.seed + self.episodes)
        ep_return, last_metrics = 0.0, {}
        next_ckpt = (self.step // c.train.checkpoint_interval + 1) * c.train.checkpoint_interval
        t_start = time.perf_counter() - self.elapsed_s
        t_row, updates_row = time.perf_counter(), self.agent.updates
        t_bar = 0.0
        summary: dict[str, float] = {}
        stop_early, episode_over = False, True
        try:
            while self.step < total:
                action = self._act(obs)
                next_obs, reward, terminated, truncated, info = self.env.step(action)
                # Our robot envs report the action their safety layer let through: learn from what was done,
                # as the collector does on the robot.
                executed = info.get("executed_action", action)
                self.buffer.add(obs, executed, reward, next_obs, terminated, truncated)
                self.agent.normalizer.update(obs)
                self.step += 1
                ep_return += float(reward)
                obs = next_obs
                last_metrics = self._learn() or last_metrics  # none before learning_starts (core/utd.py)
                if self.store is not None:
                    self.buffer.persist(self.store, c.replay.chunk_size)
                episode_over = terminated or truncated
                if episode_over:  # bookkeeping first, so an evaluation on this step counts the episode
                    self.episodes += 1
                    self.train_returns.append(ep_return)
                    ep_return = 0.0
                if self.step % c.train.eval_interval == 0 or self.step == total:
                    self.elapsed_s = time.perf_counter() - t_start
                    summary = self.evaluate()
                    now = time.perf_counter()
                    row = self._row(summary, last_metrics, (self.agent.updates - updates_row) / (now - t_row))
                    runlog.row(row)
                    t_row, updates_row = time.perf_counter(), self.agent.updates
                    bar.write(_row_text(row))
                    if c.train.target_return is not None and summary["return_mean"] >= c.train.target_return:
                        bar.write(f"target return {c.train.target_return} reached at step {self.step}")
                        stop_early = True
                if episode_over:
                    if self.step >= next_ckpt:
                        self.elapsed_s = time.perf_counter() - t_start
                        self.save_checkpoint(at_episode_boundary=True)
                        next_ckpt += c.train.checkpoint_interval
                    obs, _ = self.env.reset(seed=c.train.seed + self.episodes)
                if stop_early:
                    break
                now = time.perf_counter()
                if now - t_bar > c.train.log_interval_s:
                    bar.n = self.step
                    bar.set_postfix(_postfix(self), refresh=True)
                    t_bar = now
        except KeyboardInterrupt:
            self.elapsed_s = time.perf_counter() - t_start
            self.save_checkpoint(at_episode_boundary=False)
            raise
        finally:
            bar.close()
            runlog.close()
        self.elapsed_s = time.perf_counter() - t_start
        self.save_checkpoint(at_episode_boundary=episode_over)
        export_policy(
            self.agent,
            self.run_dir / "policy.safetensors",
            env_id=c.env.id,
            config=c.model_dump(mode="json"),
            **self.policy_info,
        )
        return summary

    def _robot_policy_info(self, obs_dim: int, act_dim: int) -> dict[str, Any]:
        """With a robot section, the run's policy.safetensors carries what the deploy node checks (joint names,
        observation layout, control rate, action mapping), as `sac-robot export` output does, so it deploys as
        it is. A robot pipeline whose sizes differ from the simulation's cannot run this policy: said at start."""
        robot = robot_policy_info(self.cfg, str(self.run_dir / "config.yaml"))
        if robot is None:
            return {}
        robot_obs, robot_act, info = robot
        if (robot_obs, robot_act) != (obs_dim, act_dim):
            raise ConfigError(
                f"robot: the robot pipeline has observation/action sizes ({robot_obs}, {robot_act}) but "
                f"env {self.cfg.env.id} has ({obs_dim}, {act_dim}): a policy trained here could not run on the robot"
            )
        return info

    def _row(self, summary: dict[str, float], metrics: dict[str, torch.Tensor], ups: float) -> dict[str, Any]:
        return {
            "time_s": self.elapsed_s,
            "env_steps": self.step,
            "updates": self.agent.updates,
            "episodes": self.episodes,
            "train_return_mean": float(np.mean(self.train_returns)) if self.train_returns else float("nan"),
            "eval_return_mean": summary["return_mean"],
            "eval_return_std": summary["return_std"],
            "eval_len_mean": summary["length_mean"],
            "alpha": self.agent.alpha,
            "q_loss": float(metrics["q_loss"]) if "q_loss" in metrics else float("nan"),
            "pi_loss": float(metrics["pi_loss"]) if "pi_loss" in metrics else float("nan"),
            "updates_per_s": ups,
        }


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not enabled, mininterval=1.0)


def _postfix(t: Trainer) -> dict[str, str]:
    ret = f"{np.mean(t.train_returns):.1f}" if t.train_returns else "-"
    return {"ep": str(t.episodes), "ret": ret, "upd": str(t.agent.updates)}


def _row_text(row: dict[str, Any]) -> str:
    return (
        f"step {row['env_steps']:>8}  eval {row['eval_return_mean']:9.2f} ± {row['eval_return_std']:7.2f}"
        f"  len {row['eval_len_mean']:7.1f}  train {row['train_return_mean']:9.2f}  alpha {row['alpha']:.4f}"
        f"  upd/s {row['updates_per_s']:6.1f}"
    )
