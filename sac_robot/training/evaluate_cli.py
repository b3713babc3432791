# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""`sac-robot evaluate`: a frozen policy on any environment, with a table or JSON, and optional video."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from sac_robot.core.config import ConfigError, EnvConfig
from sac_robot.envs import ROBOT_KWARGS, make_env

# What the in-process legged env did before it ran the safety layer: targets clipped to the joint limits, nothing
# else (no margin, no rate limit, no fall or sensor checks that could hold a step).
LEGACY_SAFETY = {
    "position_margin": 0.0,
    "max_velocity_fraction": 1.0,
    "max_effort_fraction": 1.0,
    "sensor_timeout_s": 1e9,
    "max_roll": 3.14159,
    "max_pitch": 1.5707,
}
from sac_robot.policy_runtime import FrozenPolicy, PolicyFormatError
from sac_robot.training.evaluate import rollout


def env_config(policy: FrozenPolicy, env_id: str) -> tuple[EnvConfig, dict[str, Any] | None]:
    """The env (and robot section) as the policy was trained on them, which fix the observation layout, action
    scale, safety layer and reward, when ``env_id`` is that env; otherwise ``env_id`` with its defaults (e.g. a
    transfer study). A policy from before configs named their robot once carries it in env.kwargs alone."""
    trained = (policy.meta.get("config") or {}).get("env") or {}
    if trained.get("id") != env_id:
        return EnvConfig(id=env_id), None
    kwargs = dict(trained.get("kwargs") or {})
    robot = (policy.meta.get("config") or {}).get("robot")
    if ROBOT_KWARGS & set(kwargs):  # trained before the in-process env ran the safety layer: as it was then
        kwargs.setdefault("safety", LEGACY_SAFETY)
        return EnvConfig(id=env_id, kwargs=kwargs), None
    return EnvConfig(id=env_id, kwargs=kwargs), robot


def evaluate_main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        policy = FrozenPolicy.load(args.policy)
    except (OSError, PolicyFormatError) as err:
        raise ConfigError(f"--policy: {err}") from None
    env_cfg, robot = env_config(policy, args.env)
    env = make_env(env_cfg, render_mode="rgb_array" if args.video else None, robot=robot)
    if env.observation_space.shape != (policy.obs_dim,) or env.action_space.shape != (policy.act_dim,):
        raise ConfigError(
            f"--env: {args.env} has observation {env.observation_space.shape} and action {env.action_space.shape}, "
            f"the policy expects ({policy.obs_dim},) and ({policy.act_dim},)"
        )
    frames: list[np.ndarray] = []
    recording = {"episode": 0}
    bar = tqdm(total=args.episodes, unit="ep", disable=args.json, file=sys.stderr)

    def on_episode(i: int, ret: float, length: int) -> None:
        recording["episode"] = i + 1
        bar.update(1)
        bar.set_postfix(ret=f"{ret:.1f}", len=length)

    def on_frame(frame: np.ndarray) -> None:
        if recording["episode"] < args.video_episodes:
            frames.append(frame)

    result = rollout(env, policy.act, args.episodes, args.seed, on_episode, on_frame if args.video else None)
    bar.close()
    if args.video:
        import imageio.v2 as imageio

        fps = env.metadata.get("render_fps", 50)
        imageio.mimwrite(args.video, frames, fps=fps, macro_block_size=1)
    out = {"policy": args.policy, "env": args.env, "seed": args.seed, **result.to_dict()}
    if args.video:
        out["video"] = args.video
    if args.json:
        print(json.dumps(out))
    else:
        s = result.summary()
        print(f"{args.env}: {s['episodes']} episodes, policy {args.policy}")
        print(
            f"  return  mean {s['return_mean']:9.2f}  std {s['return_std']:8.2f}  min {s['return_min']:9.2f}  max {s['return_max']:9.2f}"
        )
        print(
            f"  length  mean {s['length_mean']:9.1f}  std {s['length_std']:8.1f}  min {s['length_min']:9.0f}  max {s['length_max']:9.0f}"
        )
    return 0
