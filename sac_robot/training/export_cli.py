# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""`sac-robot export`: freeze a run's checkpoint into a deployable policy file (docs/policy_format.md).

The run's own config.yaml decides the dimensions: with a `robot` section the robot pipeline (joint
names, observation layout, control rate, action mapping: what the deploy node checks), otherwise the
gymnasium environment. The newest checkpoint that verifies is used, or the one taken at a given
number of environment steps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sac_robot.core.atomic_io import CorruptFileError, load_tensors
from sac_robot.core.checkpoint import CKPT_RE, CheckpointManager
from sac_robot.core.config import Config, ConfigError, validate_config


class ExportError(ConfigError):
    """A run cannot be exported; the message names the file and the problem."""


def load_run_config(run_dir: Path) -> Config:
    if not run_dir.is_dir():
        raise FileNotFoundError(f"--run-dir: {run_dir} is not a directory")
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"--run-dir: {run_dir} holds no run ({path} is missing)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ExportError(f"{path}: invalid YAML ({err})") from None
    return validate_config(data, str(path))


def load_checkpoint(run_dir: Path, step: int | None) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
    """The newest checkpoint that verifies, or exactly the one taken at ``step`` environment steps."""
    ckpts = CheckpointManager(run_dir)
    if step is None:
        return ckpts.load_latest()
    path = ckpts.dir / f"ckpt_{step:012d}.safetensors"
    if not path.is_file():
        available = [int(m.group(1)) for p in ckpts.paths() if (m := CKPT_RE.match(p.name))]
        raise FileNotFoundError(f"--checkpoint {step}: {path} does not exist (available steps: {available or 'none'})")
    try:
        tensors, meta = load_tensors(path)
    except CorruptFileError as err:
        raise ExportError(f"--checkpoint {step}: {err}") from None
    return tensors, meta, path


def robot_policy_info(cfg: Config, source: str) -> tuple[int, int, dict[str, Any]] | None:
    """(obs_dim, act_dim, metadata the deploy node checks) of the config's robot pipeline; None without one.
    Every policy file written for a robot config carries this, whichever path (train, learner, export) wrote it."""
    if cfg.robot is None:
        return None
    from sac_robot.robot.deploy_check import pipeline_policy_info
    from sac_robot.robot.pipeline import build_pipeline

    pipe = build_pipeline(cfg.robot, source)
    return pipe.obs_dim, pipe.act_dim, pipeline_policy_info(pipe)


def policy_spec(cfg: Config, source: str) -> tuple[int, int, np.ndarray, np.ndarray, dict[str, Any]]:
    """(obs_dim, act_dim, action_low, action_high, metadata) from the robot pipeline, else from the env."""
    robot = robot_policy_info(cfg, source)
    if robot is not None:
        obs_dim, act_dim, info = robot
        ones = np.ones(act_dim)
        return obs_dim, act_dim, -ones, ones, info
    from sac_robot.envs import make_env

    env = make_env(cfg.env, robot=cfg.robot)
    try:
        obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
        low, high = np.asarray(env.action_space.low, np.float64), np.asarray(env.action_space.high, np.float64)
    finally:
        env.close()
    return obs_dim, act_dim, low, high, {}


def _check_shapes(tensors: dict[str, np.ndarray], obs_dim: int, act_dim: int, hidden: list[int], path: Path) -> None:
    first, head = tensors.get("actor.trunk.0.weight"), tensors.get("actor.head.weight")
    if first is None or head is None:
        raise ExportError(f"{path}: not a learner checkpoint (no actor weights)")
    problems = []
    if first.shape[1] != obs_dim:
        problems.append(f"observation size {first.shape[1]}, the config gives {obs_dim}")
    if head.shape[0] != 2 * act_dim:
        problems.append(f"action size {head.shape[0] // 2}, the config gives {act_dim}")
    if first.shape[0] != hidden[0]:
        problems.append(f"first hidden layer {first.shape[0]}, sac.hidden_sizes gives {hidden}")
    if problems:
        raise ExportError(f"{path}: checkpoint does not fit the run's config.yaml: " + "; ".join(problems))


def export_run(run_dir: str | Path, out: str | Path, checkpoint: int | None = None) -> dict[str, Any]:
    """Write the frozen policy of a run's checkpoint to ``out``; returns what was written."""
    from sac_robot.core.export import export_policy
    from sac_robot.core.sac import SAC

    run_dir, out = Path(run_dir), Path(out)
    cfg = load_run_config(run_dir)
    tensors, meta, path = load_checkpoint(run_dir, checkpoint)
    obs_dim, act_dim, low, high, info = policy_spec(cfg, str(run_dir / "config.yaml"))
    _check_shapes(tensors, obs_dim, act_dim, cfg.sac.hidden_sizes, path)
    sac_cfg = cfg.sac.model_copy(update={"device": "cpu"})  # exporting needs no accelerator
    agent = SAC(obs_dim, act_dim, low, high, sac_cfg, cfg.train.seed)
    try:
        agent.load_state_dict(tensors, meta)
    except (KeyError, RuntimeError, ValueError) as err:
        raise ExportError(f"{path}: cannot load the checkpoint into the run's agent ({type(err).__name__}: {err})")
    match = CKPT_RE.match(path.name)
    step = int(match.group(1)) if match else None
    out.parent.mkdir(parents=True, exist_ok=True)
    export_policy(
        agent,
        out,
        env_id=cfg.env.id,
        config=cfg.model_dump(mode="json"),
        checkpoint=str(path.resolve()),
        checkpoint_step=step,
        **info,
    )
    return {
        "out": str(out),
        "checkpoint": str(path.resolve()),
        "checkpoint_step": step,
        "updates": agent.updates,
        "obs_dim": obs_dim,
        "act_dim": act_dim,
        "source": "robot" if info else "env",
    }


def export_main(args: argparse.Namespace) -> int:
    result = export_run(args.run_dir, args.out, args.checkpoint)
    print(json.dumps(result))
    return 0
