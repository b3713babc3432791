# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Transfer study: one policy trained on BipedalWalker-v3, evaluated on the normal and the hardcore walker.

For each environment: N deterministic episodes (seeds seed..seed+N-1), return, length and how each episode
ended (fell, finished the course, time limit) with the distance reached. Writes, under --out:
  results.json   every episode, and the summary per environment
  table.md       the table for docs/results/README.md
  transfer.png   return and distance-reached distributions, normal vs hardcore
  side_by_side.mp4  the first episode of each environment, rendered side by side (50 Hz sim, 25 fps video)

    python bench/transfer_study.py --policy runs/bipedal_walker_ros_seed0/policy.safetensors \
        --episodes 100 --out docs/results/bipedal_walker_transfer
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from sac_robot.policy_runtime import FrozenPolicy
from sac_robot.training.evaluate import EvalResult

ENVS = {"normal": "BipedalWalker-v3", "hardcore": "BipedalWalkerHardcore-v3"}


def course_end(env: gym.Env) -> float:
    """The x a walker must pass to finish (gymnasium's BipedalWalker: terrain minus the final grass)."""
    from gymnasium.envs.box2d import bipedal_walker as bw

    return (bw.TERRAIN_LENGTH - bw.TERRAIN_GRASS) * bw.TERRAIN_STEP


def episode(env: gym.Env, policy: FrozenPolicy, seed: int, frames: list | None) -> dict:
    obs, _ = env.reset(seed=seed)
    start_x = env.unwrapped.hull.position.x
    total, length, terminated, truncated = 0.0, 0, False, False
    while not (terminated or truncated):
        if frames is not None and length % 2 == 0:
            frames.append(env.render())
        obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
        total += float(reward)
        length += 1
    end = course_end(env)
    x = env.unwrapped.hull.position.x
    if x >= end:
        outcome = "finished"
    elif terminated:  # the hull touched the ground (game over) or the walker left the course backwards
        outcome = "fell"
    else:
        outcome = "time limit"
    return {
        "seed": seed,
        "return": total,
        "length": length,
        "outcome": outcome,
        "progress": float((x - start_x) / (end - start_x)),
    }


def summarise(rows: list[dict]) -> dict:
    r = np.array([e["return"] for e in rows])
    base = EvalResult(list(r), [e["length"] for e in rows]).summary()  # what `sac-robot evaluate` reports
    outcomes = {k: sum(e["outcome"] == k for e in rows) for k in ("finished", "fell", "time limit")}
    return {
        **base,
        "solved_fraction": float(np.mean(r >= 300.0)),
        "progress_mean": float(np.mean([e["progress"] for e in rows])),
        **outcomes,
    }


def table(summary: dict[str, dict]) -> str:
    lines = [
        (
            "| environment | episodes | return mean ± std | min / max | ≥ 300 | length mean ± std | finished | fell |"
            " time limit | course covered |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, s in summary.items():
        lines.append(
            f"| {ENVS[key]} | {s['episodes']} | {s['return_mean']:.1f} ± {s['return_std']:.1f} | "
            f"{s['return_min']:.1f} / {s['return_max']:.1f} | {100 * s['solved_fraction']:.0f} % | "
            f"{s['length_mean']:.0f} ± {s['length_std']:.0f} | {s['finished']} | {s['fell']} | {s['time limit']} | "
            f"{100 * s['progress_mean']:.0f} % |"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"normal": "tab:blue", "hardcore": "tab:red"}
    for key, rows in results.items():
        r = [e["return"] for e in rows]
        p = [100 * e["progress"] for e in rows]
        axes[0].hist(r, bins=30, alpha=0.6, color=colors[key], label=f"{ENVS[key]} (mean {np.mean(r):.0f})")
        axes[1].hist(p, bins=30, alpha=0.6, color=colors[key], label=ENVS[key])
    axes[0].axvline(300, color="k", ls="--", lw=1)
    axes[0].set_xlabel("episode return")
    axes[0].set_ylabel("episodes")
    axes[0].legend(fontsize=8)
    axes[0].set_title("return, deterministic policy")
    axes[1].set_xlabel("course covered before the episode ended (%)")
    axes[1].set_title("how far the walker got")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def side_by_side(frames: dict[str, list[np.ndarray]], path: Path) -> None:
    import imageio.v2 as imageio

    n = max(len(f) for f in frames.values())
    padded = [f + [f[-1]] * (n - len(f)) for f in frames.values()]  # the shorter one holds its last frame
    video = [np.concatenate([a, np.full((a.shape[0], 8, 3), 255, np.uint8), b], axis=1) for a, b in zip(*padded)]
    imageio.mimwrite(path, video, fps=25, macro_block_size=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", required=True)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1_000_000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-video", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    policy = FrozenPolicy.load(args.policy)
    results: dict[str, list[dict]] = {}
    frames: dict[str, list[np.ndarray]] = {}
    for key, env_id in ENVS.items():
        env = gym.make(env_id, render_mode=None if args.no_video else "rgb_array")
        frames[key] = []
        t0, rows = time.perf_counter(), []
        for i in range(args.episodes):
            rows.append(episode(env, policy, args.seed + i, frames[key] if i == 0 and not args.no_video else None))
        results[key] = rows
        s = summarise(rows)
        print(
            f"{env_id}: return {s['return_mean']:.1f} ± {s['return_std']:.1f}, finished {s['finished']}, "
            f"fell {s['fell']}, course {100 * s['progress_mean']:.0f} % ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    summary = {k: summarise(v) for k, v in results.items()}
    (out / "results.json").write_text(
        json.dumps(
            {
                "policy": args.policy,
                "sha256": policy.sha256,
                "seed": args.seed,
                "summary": summary,
                "episodes": results,
            },
            indent=1,
        )
    )
    (out / "table.md").write_text(table(summary))
    plot(results, out / "transfer.png")
    if not args.no_video:
        side_by_side(frames, out / "side_by_side.mp4")
    print(table(summary))


if __name__ == "__main__":
    main()
