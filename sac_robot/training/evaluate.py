# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Deterministic evaluation rollouts, shared by training and `sac-robot evaluate`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import gymnasium as gym
import numpy as np

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never reuse a training episode's seed


@dataclass
class EvalResult:
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        r, n = np.asarray(self.returns, dtype=float), np.asarray(self.lengths, dtype=float)
        return {
            "episodes": len(r),
            "return_mean": float(r.mean()),
            "return_std": float(r.std()),
            "return_min": float(r.min()),
            "return_max": float(r.max()),
            "length_mean": float(n.mean()),
            "length_std": float(n.std()),
            "length_min": float(n.min()),
            "length_max": float(n.max()),
        }

    def to_dict(self) -> dict:
        return {**self.summary(), **asdict(self)}


def rollout(
    env: gym.Env,
    policy: Callable[[np.ndarray], np.ndarray],
    episodes: int,
    seed: int,
    on_episode: Callable[[int, float, int], None] | None = None,
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes with seeds seed, seed+1, …; ``on_frame`` receives rendered frames."""
    result = EvalResult()
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, length, done = 0.0, 0, False
        while not done:
            if on_frame is not None:
                on_frame(env.render())
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            length += 1
            done = terminated or truncated
        result.returns.append(total)
        result.lengths.append(length)
        if on_episode is not None:
            on_episode(i, total, length)
    return result
