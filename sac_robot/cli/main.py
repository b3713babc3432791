# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The `sac-robot` command: the same jobs as the launch files, without a ROS distribution."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from sac_robot.core.config import ConfigError


def cmd_train(args: argparse.Namespace) -> int:
    from sac_robot.core.config import load_config
    from sac_robot.training.trainer import Trainer

    if args.resume:
        if not args.run_dir:
            raise ConfigError("--resume needs the --run-dir of the run to continue")
        run_dir = Path(args.run_dir)
        trainer = Trainer(None, run_dir, resume=True, progress=not args.quiet, total_steps=args.steps)
    else:
        if not args.config:
            raise ConfigError("--config is required to start a new run")
        overrides = {
            k: v
            for k, v in (("train.total_steps", args.steps), ("train.seed", args.seed), ("sac.device", args.device))
            if v is not None
        }
        cfg = load_config(args.config, overrides)
        run_dir = Path(args.run_dir or f"runs/{Path(args.config).stem}_seed{cfg.train.seed}")
        trainer = Trainer(cfg, run_dir, progress=not args.quiet)
    print(f"run directory: {run_dir}", file=sys.stderr)
    try:
        summary = trainer.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint saved; continue with --resume --run-dir {run_dir}", file=sys.stderr)
        return 130
    print(json.dumps({"run_dir": str(run_dir), "final_eval": summary}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sac_robot.training.evaluate_cli import evaluate_main

    return evaluate_main(args)


def cmd_export(args: argparse.Namespace) -> int:
    from sac_robot.training.export_cli import export_main

    return export_main(args)


def cmd_plot(args: argparse.Namespace) -> int:
    from sac_robot.training.plot import plot_main

    return plot_main(args)


def cmd_launch(args: argparse.Namespace) -> int:
    from sac_robot.cli.launcher import launch

    return launch(args.job, args.assignments)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="sac-robot", description="Soft Actor-Critic for legged robots over ROS 2.")
    ap.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train in-process on a gymnasium environment (the reference path)")
    t.add_argument("--config", help="a config file or the name of a packaged config (e.g. pendulum)")
    t.add_argument("--steps", type=int, help="override train.total_steps")
    t.add_argument("--seed", type=int, help="override train.seed")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override sac.device")
    t.add_argument("--run-dir", help="where to write the run (default runs/<config>_seed<seed>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="deterministic rollouts of a frozen policy")
    e.add_argument("--policy", required=True, help="a policy.safetensors file")
    e.add_argument("--env", required=True, help="gymnasium id, e.g. BipedalWalkerHardcore-v3")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    e.add_argument("--video", help="write the first episodes as an mp4 here")
    e.add_argument("--video-episodes", type=int, default=1)
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", help="freeze a run's checkpoint into a policy file (docs/policy_format.md)")
    x.add_argument("--run-dir", required=True, help="the run directory (config.yaml, checkpoints/)")
    x.add_argument("--checkpoint", type=int, metavar="STEPS", help="the checkpoint taken at this many env steps")
    x.add_argument("--out", required=True, help="the policy file to write, e.g. policy.safetensors")
    x.set_defaults(func=cmd_export)

    p = sub.add_parser("plot", help="learning curves of runs (progress.csv) as a PNG")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories; seeds of one config are grouped")
    p.add_argument("--out", default="curves.png", help="the PNG to write (default curves.png)")
    p.add_argument("--labels", help="comma-separated curve labels, one per curve (group of seeds)")
    p.add_argument("--band", choices=["minmax", "std"], default="minmax", help="band over seeds (default minmax)")
    p.add_argument("--title", help="figure title")
    p.set_defaults(func=cmd_plot)
    la = sub.add_parser("launch", help="start a job's ROS nodes (same as ros2 launch sac_robot JOB.launch.py)")
    la.add_argument("job", choices=["train_sim", "train_hw", "deploy"])
    la.add_argument("assignments", nargs="*", metavar="name:=value", help="launch arguments (see docs/launch.md)")
    la.set_defaults(func=cmd_launch)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, FileExistsError) as err:
        print(f"sac-robot: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
