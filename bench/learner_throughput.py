# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Gradient updates per second: our SAC update versus Stable-Baselines3's, alternately, same process.

Both learners get BipedalWalker shapes (24-d observation, 4-d action), identical network sizes,
batch 256, 2 critics, automatic temperature, a replay buffer pre-filled with the same random data,
and the same torch thread count. Each round times a block of updates of ours then of SB3 (the order
alternates between rounds), so machine noise hits both alike. Run alone: the machine has 2 cores.

    python bench/learner_throughput.py [--rounds 7] [--updates 200] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from sac_robot.core.config import SACConfig
from sac_robot.core.replay import ReplayBuffer
from sac_robot.core.sac import SAC

OBS_DIM, ACT_DIM, BUFFER = 24, 4, 50_000


def make_ours(hidden: list[int], data: dict[str, np.ndarray], precision: str = "float32"):
    cfg = SACConfig(hidden_sizes=hidden, batch_size=256, device="cpu", normalize_obs=False, precision=precision)
    agent = SAC(OBS_DIM, ACT_DIM, -np.ones(ACT_DIM), np.ones(ACT_DIM), cfg, seed=0)
    buf = ReplayBuffer(BUFFER, OBS_DIM, ACT_DIM)
    buf.add_batch(data)
    rng = np.random.default_rng(0)

    def run(n: int) -> None:
        for _ in range(n):
            agent.update(buf.sample(256, rng))

    return run


def make_sb3(hidden: list[int], data: dict[str, np.ndarray]):
    import gymnasium as gym
    from stable_baselines3 import SAC as SB3SAC

    class Shapes(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

        def reset(self, *, seed=None, options=None):
            return np.zeros(OBS_DIM, np.float32), {}

        def step(self, action):
            return np.zeros(OBS_DIM, np.float32), 0.0, False, False, {}

    model = SB3SAC(
        "MlpPolicy",
        Shapes(),
        buffer_size=BUFFER,
        batch_size=256,
        learning_starts=0,
        policy_kwargs={"net_arch": hidden},
        device="cpu",
        seed=0,
        verbose=0,
    )
    from stable_baselines3.common.logger import configure

    model.set_logger(configure(None, []))
    rb = model.replay_buffer
    n = len(data["reward"])
    rb.observations[:n, 0] = data["obs"]
    rb.next_observations[:n, 0] = data["next_obs"]
    rb.actions[:n, 0] = data["action"]
    rb.rewards[:n, 0] = data["reward"]
    rb.dones[:n, 0] = data["terminated"]
    rb.pos, rb.full = n % BUFFER, n >= BUFFER

    def run(k: int) -> None:
        model.train(gradient_steps=k, batch_size=256)

    return run


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--updates", type=int, default=200, help="updates per timed block")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="400x300,256x256")
    ap.add_argument("--bf16", action="store_true", help="also time our update with precision: bfloat16")
    ap.add_argument("--json", help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    data = {
        "obs": rng.standard_normal((BUFFER, OBS_DIM)).astype(np.float32),
        "action": rng.uniform(-1, 1, (BUFFER, ACT_DIM)).astype(np.float32),
        "reward": rng.standard_normal(BUFFER).astype(np.float32),
        "next_obs": rng.standard_normal((BUFFER, OBS_DIM)).astype(np.float32),
        "terminated": (rng.random(BUFFER) < 0.01).astype(np.float32),
        "truncated": np.zeros(BUFFER, np.float32),
        "intervened": np.zeros(BUFFER, np.float32),
    }
    results = {}
    for size in args.sizes.split(","):
        hidden = [int(h) for h in size.split("x")]
        runners = {"ours": make_ours(hidden, data), "sb3": make_sb3(hidden, data)}
        if args.bf16:
            runners["ours_bf16"] = make_ours(hidden, data, "bfloat16")
        for run in runners.values():  # warm-up: allocator, oneDNN primitive caches
            run(20)
        rates: dict[str, list[float]] = {name: [] for name in runners}
        for r in range(args.rounds):
            order = list(runners) if r % 2 == 0 else list(reversed(runners))
            for name in order:
                t0 = time.perf_counter()
                runners[name](args.updates)
                rates[name].append(args.updates / (time.perf_counter() - t0))
        res = {name: _spread(v) for name, v in rates.items()}
        for name in runners:
            if name != "sb3":  # per-round ratios: both sides of a ratio ran back to back
                res[f"ratio_{name}"] = _spread([o / s for o, s in zip(rates[name], rates["sb3"])])
        results[size] = res
        line = "  ".join(f"{n} {res[n]['median']:.1f} upd/s ({res[n]['min']:.1f}-{res[n]['max']:.1f})" for n in runners)
        ratios = "  ".join(
            f"{k[6:]}/sb3 {v['median']:.2f}x ({v['min']:.2f}-{v['max']:.2f})"
            for k, v in res.items()
            if k[:6] == "ratio_"
        )
        print(f"[{size}] {line}\n[{size}] {ratios}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "torch": torch.__version__, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
