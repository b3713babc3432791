# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The `sac-robot` command: the same jobs as the launch files, without a ROS distribution."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from sac_robot.core.config import ConfigError


def _interrupt_on_signals() -> None:
    """SIGINT and SIGTERM both end training with a checkpoint, also in a job started in the background
    (where a shell leaves SIGINT ignored) or stopped by a process manager (SIGTERM)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def cmd_train(args: argparse.Namespace) -> int:
    from sac_robot.core.config import load_config
    from sac_robot.nodes.ros_env import register_ros_env
    from sac_robot.training.trainer import Trainer

    register_ros_env()  # env.id SacRobotRos-v0: a ROS robot through its gymnasium view (the nodes layer)

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
    _interrupt_on_signals()
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


def _local_discovery() -> None:
    """As `sac-robot launch`: DDS discovery stays on this machine unless the user chose otherwise."""
    from sac_robot.cli.launcher import network_env

    os.environ.update(network_env())


def cmd_arm(args: argparse.Namespace) -> int:
    """Lifecycle transitions of `<ns>/collector`: configure (if unconfigured), then activate; or deactivate."""
    _local_discovery()
    import rclpy
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    ns = args.namespace.strip("/")
    target = f"/{ns}/{args.node}" if ns else f"/{args.node}"
    rclpy.init()
    node = rclpy.create_node("sac_robot_arm")
    try:

        def call(service: type, name: str, request: object) -> object:
            client = node.create_client(service, f"{target}/{name}")
            if not client.wait_for_service(timeout_sec=args.timeout):
                raise TimeoutError(
                    f"{target}/{name} not available within {args.timeout:g} s: is the collector running?"
                )
            future = client.call_async(request)
            rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
            if future.result() is None:
                raise TimeoutError(f"{target}/{name}: no answer within {args.timeout:g} s")
            return future.result()

        def state() -> str:
            return call(GetState, "get_state", GetState.Request()).current_state.label

        def change(transition: int, what: str) -> bool:
            ok = call(ChangeState, "change_state", ChangeState.Request(transition=Transition(id=transition))).success
            print(f"{target}: {what} {'done' if ok else 'FAILED (see the collector log)'}")
            return ok

        label = state()
        print(f"{target}: {label}")
        if args.disarm:
            return 0 if label != "active" or change(Transition.TRANSITION_DEACTIVATE, "deactivate") else 1
        if label == "unconfigured" and not change(Transition.TRANSITION_CONFIGURE, "configure"):
            return 1
        if state() == "inactive" and not change(Transition.TRANSITION_ACTIVATE, "activate (armed)"):
            return 1
        label = state()
        print(f"{target}: {label}{' (armed: commands are published)' if label == 'active' else ''}")
        return 0 if label == "active" else 1
    except TimeoutError as err:
        print(f"sac-robot arm: {err}", file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def cmd_bringup(args: argparse.Namespace) -> int:
    _local_discovery()
    from sac_robot.nodes.bringup_node import run

    ros_args = ["sac-robot-bringup", "--ros-args", "-p", f"config:={args.config}"]
    if args.namespace.strip("/"):
        ros_args += ["-r", f"__ns:=/{args.namespace.strip('/')}"]
    for key in ("amplitude", "speed", "settle_s", "tolerance"):
        value = getattr(args, key)
        if value is not None:
            ros_args += ["-p", f"{key}:={value}"]
    for remap in args.remap:
        if ":=" not in remap:
            raise ConfigError(f"--remap {remap!r}: expected FROM:=TO, e.g. joint_states:=/joint_states")
        ros_args += ["-r", remap]
    return run(ros_args, timeout_s=args.timeout)


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

    ar = sub.add_parser("arm", help="arm a collector (lifecycle configure + activate): commands start flowing")
    ar.add_argument("--namespace", default="", help="the robot's namespace (e.g. robot1)")
    ar.add_argument("--node", default="collector", help="the collector's node name (default collector)")
    ar.add_argument("--disarm", action="store_true", help="deactivate instead: the collector stops commanding")
    ar.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the collector's services")
    ar.set_defaults(func=cmd_arm)

    b = sub.add_parser("bringup", help="check joint order, direction and scale on the robot, one joint at a time")
    b.add_argument("--config", required=True, help="the robot's training config (name or path)")
    b.add_argument("--namespace", default="", help="the robot's namespace (e.g. robot1)")
    b.add_argument("--amplitude", type=float, help="test motion per joint, rad (default 0.1)")
    b.add_argument("--speed", type=float, help="test motion speed, rad/s (default 0.2)")
    b.add_argument("--settle-s", dest="settle_s", type=float, help="hold before measuring, s (default 0.5)")
    b.add_argument("--tolerance", type=float, help="allowed error of the measured motion, rad (default 0.04)")
    b.add_argument("--remap", action="append", default=[], metavar="FROM:=TO", help="e.g. joint_states:=/js")
    b.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    b.set_defaults(func=cmd_bringup)
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
