# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""A short training run of the quadruped through ROS (`sac-robot launch train_sim stand_in:=pybullet`: PyBullet
stand-in, collector and learner as processes over Fast DDS) improves the return over the random policy.

The run is config/quadruped.yaml made small (3,000 steps, [64, 64] networks, 10 s episodes, seed 0). The random
baseline comes from the in-process view of the same simulation (SacRobotQuadruped-v0 with the config's kwargs),
20 episodes of uniform actions (-11 for seed 0: the config's speed term pays nothing at a standstill, and
random actions soon fall). The measure is the learner's mean return over its 20 latest training episodes (the
exploring policy, like for like with the uniform one; two deterministic evaluation episodes are too few to judge
on). The threshold, random + 75 over a 10 s episode of 200 steps, fails for a learner that does not learn:
the random policy falls within seconds, so clearing it takes staying up longer or moving forward. Seen in four
runs: random -11, training return 119-399 at the last evaluation (about 2,000 steps). Walking is the 50k-step benchmark in bench/.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sac_robot.core.config import EnvConfig
from sac_robot.envs import make_env
from sac_robot.training.run_log import read_progress

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
TOTAL_STEPS = 3000


def small_quadruped(tmp_path: Path) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "quadruped.yaml").read_text(encoding="utf-8"))
    cfg["robot"]["episode_seconds"] = 10
    cfg["sac"].update(hidden_sizes=[64, 64], batch_size=64, learning_starts=500, utd=2, torch_threads=1)
    cfg["replay"].update(capacity=10_000, chunk_size=1000)
    cfg["train"].update(total_steps=TOTAL_STEPS, eval_episodes=2)
    cfg["robot"].update(eval_every_steps=1000, eval_episodes=2)
    path = tmp_path / "quadruped_small.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def random_return(config: Path, episodes: int = 20) -> float:
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    env = make_env(EnvConfig(**cfg["env"]), robot=cfg["robot"])
    rng = np.random.default_rng(0)
    returns = []
    for i in range(episodes):
        env.reset(seed=i)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def test_short_ros_training_beats_the_random_policy(tmp_path: Path, ros_env: dict[str, str], proc_reaper: Any) -> None:
    t0 = time.monotonic()
    config, run_dir = small_quadruped(tmp_path), tmp_path / "run"
    baseline = random_return(config)
    cmd = [sys.executable, "-m", "sac_robot.cli.main", "launch", "train_sim", f"config:={config}",
           "stand_in:=pybullet", f"run_dir:={run_dir}", "seed:=0"]  # fmt: skip
    log_path = tmp_path / "launch.log"
    with open(log_path, "w") as log:
        launcher = proc_reaper.spawn(cmd, env=ros_env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        rc = launcher.wait(timeout=480)
    except subprocess.TimeoutExpired:
        proc_reaper.stop(launcher, grace_s=30.0)
        rc = None
    log = log_path.read_text(errors="replace")
    assert rc == 0, f"train_sim did not finish ({rc}):\n{log[-4000:]}"
    rows = [r for r in read_progress(run_dir) if not np.isnan(r["eval_return_mean"])]
    assert rows, f"no evaluation in progress.csv:\n{log[-3000:]}"
    final = rows[-1]["train_return_mean"]
    print(
        f"quadruped via ROS: random {baseline:.1f}, evaluations {[round(r['eval_return_mean'], 1) for r in rows]} "
        f"at {[int(r['env_steps']) for r in rows]} steps, training return {[round(r['train_return_mean'], 1) for r in rows]}, "
        f"{time.monotonic() - t0:.0f} s"
    )
    assert final > baseline + 75.0, (
        f"after {TOTAL_STEPS} steps the return {final:.1f} is not random {baseline:.1f} + 75"
    )
