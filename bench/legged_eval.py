# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Does the legged robot walk? Deterministic episodes of an exported policy on the PyBullet robot it was trained
on (the env and its kwargs come from the policy file), measuring what the walking goal names: forward speed
over the episode (along the robot's heading, and as net progress along world x), time upright, and whether
it fell. Optionally a rollout video from PyBullet's camera.

    python bench/legged_eval.py --policy runs/quadruped_ros_seed0/policy.safetensors --episodes 5 \
        --json docs/results/quadruped_ros/walk.json --video docs/results/quadruped_ros/rollout.mp4

Every checkpoint of a run (speed against environment steps, a CSV and a plot):

    python bench/legged_eval.py --checkpoints runs/quadruped_ros_m1_seed0/snapshots --episodes 1 \
        --json docs/results/quadruped_ros/checkpoints.json

Goal (issue 4): forward speed >= 0.3 m/s for 20 s without falling.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from sac_robot.core.checkpoint import CKPT_RE
from sac_robot.envs import make_env
from sac_robot.policy_runtime import FrozenPolicy
from sac_robot.training.evaluate_cli import env_config
from sac_robot.training.export_cli import export_run


def _perturbed_start(env: object, seed: int, joints: float = 0.1) -> dict:
    """A different start per seed: every joint up to ±``joints`` rad off home, and any heading (the simulation
    is otherwise deterministic, so unperturbed episodes are identical for every seed)."""
    rng = np.random.default_rng(seed)
    home = env.unwrapped.description.array("home")
    yaw = rng.uniform(-math.pi, math.pi)
    return {
        "pose": home + rng.uniform(-joints, joints, home.shape),
        "base_orientation": np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]),
    }


def run(
    policy_path: str, episodes: int, seed: int, video: str | None, env_id: str | None, perturb: bool = False
) -> dict:
    policy = FrozenPolicy.load(policy_path)
    env_id = env_id or (policy.meta.get("config") or {}).get("env", {}).get("id")
    if not env_id:
        sys.exit(f"{policy_path}: no env in the policy's metadata; give --env")
    env_cfg, robot = env_config(policy, env_id)
    env = make_env(env_cfg, render_mode="rgb_array" if video else None, robot=robot)
    frames: list[np.ndarray] = []
    rows = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i, options=_perturbed_start(env, seed + i) if perturb else None)
        robot = env.unwrapped.robot
        start = np.array(robot.true_state().base_position, dtype=float)
        total, steps, terminated, truncated, info = 0.0, 0, False, False, {}
        along_heading, path, last = 0.0, 0.0, start.copy()
        while not (terminated or truncated):
            if video and i == 0:
                frames.append(env.render())
            obs, reward, terminated, truncated, info = env.step(policy.act(obs))
            total += float(reward)
            steps += 1
            # Ground truth: each step's displacement along the robot's heading (its yaw at the end of the step),
            # so a robot that turns still counts what it walked, and rocking in place counts nothing.
            state = robot.true_state()
            now = np.array(state.base_position, dtype=float)
            yaw = _yaw(state.imu_orientation)
            along_heading += float((now[0] - last[0]) * math.cos(yaw) + (now[1] - last[1]) * math.sin(yaw))
            path += float(np.linalg.norm(now[:2] - last[:2]))
            last = now
        end = np.array(robot.true_state().base_position, dtype=float)
        seconds = steps / env.unwrapped.control_hz
        rows.append(
            {
                "seed": seed + i,
                "return": total,
                "seconds": seconds,
                "fell": bool(terminated),
                "fall_reason": info.get("fall_reason"),
                "forward_m": float(end[0] - start[0]),
                "sideways_m": float(end[1] - start[1]),
                "forward_speed_m_s": float((end[0] - start[0]) / seconds),
                "heading_speed_m_s": along_heading / seconds,
                "straight_line_speed_m_s": float(np.linalg.norm(end[:2] - start[:2]) / seconds),
                "path_m": path,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    if video:
        import imageio.v2 as imageio

        imageio.mimwrite(video, frames, fps=env.unwrapped.control_hz, macro_block_size=1)
    # forward: net world-x progress (lower when the heading drifts); heading: along the robot's own yaw, what
    # walk_in_the_park's reward measures; straight_line: start to end (lower when the walk curves)
    speeds = {k: np.array([r[f"{k}_speed_m_s"] for r in rows]) for k in ("forward", "heading", "straight_line")}
    return {
        "policy": policy_path,
        "env": env_id,
        "episodes": rows,
        **{f"{k}_speed_{stat}_m_s": float(getattr(v, stat)()) for k, v in speeds.items() for stat in ("mean", "min")},
        "falls": sum(r["fell"] for r in rows),
        "seconds_mean": float(np.mean([r["seconds"] for r in rows])),
        # walking 20 s without a fall at >= 0.3 m/s along its heading
        "goal_met": bool(
            all(not r["fell"] and r["seconds"] >= 20.0 - 1e-6 for r in rows) and speeds["heading"].min() >= 0.3
        ),
        "video": video,
        "perturbed_starts": perturb,
    }


def _yaw(q: np.ndarray) -> float:
    x, y, z, w = (float(v) for v in q)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def checkpoints(directory: str, episodes: int, seed: int, perturb: bool = False) -> dict:
    """Export and walk every checkpoint in ``directory`` (a run's checkpoints/ or copies of them, beside the
    run's config.yaml one level up)."""
    ckpt_dir = Path(directory)
    run_dir = ckpt_dir.parent
    found = sorted((int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := CKPT_RE.fullmatch(p.name)))
    if not found:
        sys.exit(f"{ckpt_dir}: no checkpoints")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        view = Path(tmp) / "run"  # export_run reads <run>/checkpoints/: a view of this directory
        (view / "checkpoints").mkdir(parents=True)
        shutil.copy(run_dir / "config.yaml", view / "config.yaml")
        for steps, path in found:
            (view / "checkpoints" / path.name).symlink_to(path.resolve())
            policy = Path(tmp) / f"policy_{steps}.safetensors"
            export_run(view, policy, checkpoint=steps)
            result = run(str(policy), episodes, seed, None, None, perturb)
            row = {"env_steps": steps, **{k: v for k, v in result.items() if k not in ("episodes", "policy", "video")}}
            rows.append(row)
            print(
                json.dumps({k: row[k] for k in ("env_steps", "heading_speed_min_m_s", "falls", "goal_met")}), flush=True
            )
    return {"checkpoints": str(ckpt_dir), "rows": rows}


def plot_checkpoints(result: dict, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    steps = [r["env_steps"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(steps, [r["heading_speed_mean_m_s"] for r in rows], "o-", label="along its heading")
    ax.plot(steps, [r["straight_line_speed_mean_m_s"] for r in rows], "s--", label="start to end, straight line")
    ax.axhline(0.3, color="k", lw=0.8, ls=":", label="goal 0.3 m/s")
    for r in rows:
        if r["falls"]:
            ax.annotate("fell", (r["env_steps"], r["heading_speed_mean_m_s"]), fontsize=7, color="red")
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.set_xlabel("environment steps (20 Hz)")
    ax.set_ylabel("walking speed, m/s")
    ax.set_title("Deterministic 20 s episodes of each checkpoint (mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--policy")
    what.add_argument("--checkpoints", help="a directory of a run's checkpoints: walk each one")
    ap.add_argument("--plot", help="with --checkpoints: speed against steps, PNG")
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1_000_000)
    ap.add_argument("--env", help="default: the env the policy was trained on")
    ap.add_argument("--json")
    ap.add_argument("--video")
    ap.add_argument("--perturb", action="store_true", help="start each episode off home and at a random heading")
    args = ap.parse_args()
    if args.checkpoints:
        result = checkpoints(args.checkpoints, args.episodes, args.seed, args.perturb)
        if args.plot:
            plot_checkpoints(result, args.plot)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=1))
        return
    result = run(args.policy, args.episodes, args.seed, args.video, args.env, args.perturb)
    summary = {k: v for k, v in result.items() if k != "episodes"}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
