# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Real-time factor (simulated seconds per wall second) of the PyBullet stand-in, alone and in the ROS loop.

    alone:        PyBulletRobot at physics_hz, one home-pose command and one sensor reading per control
                  step, no ROS: the ceiling of what the simulation itself can do.
    ros_lockstep: the pybullet_stand_in node (a subprocess, lockstep) and a minimal commander node in this
                  process that answers every new joint_states with a home-pose command: the ceiling of a
                  lockstep training loop before a collector and a learner take their share.

    python bench/sim_rate.py [--seconds 10] [--robots quadruped biped] [--json out.json]

It sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a private ROS_DOMAIN_ID (--domain-id, default
201 + pid % 30, never 100) before importing rclpy, and stops the stand-in it starts, also on Ctrl-C.
Results depend on machine load: os.getloadavg() is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from sac_robot.robot.description import load_robot
from sac_robot.sim.pybullet_robot import PyBulletRobot
from sac_robot.testing.rig import ProcessGroup, node_cmd, private_ros_env, spin_until

REPO = Path(__file__).resolve().parents[1]


def bench_alone(robot: str, seconds: float, physics_hz: float, control_hz: float) -> dict[str, object]:
    substeps = round(physics_hz / control_hz)
    description = load_robot(robot)
    home = description.array("home")
    with PyBulletRobot(description, physics_hz=physics_hz) as sim:
        for _ in range(int(control_hz)):  # warm-up: one simulated second
            sim.set_command(home)
            sim.step(substeps)
            sim.state()
        steps = 0
        start = time.perf_counter()
        while (wall := time.perf_counter() - start) < seconds:
            sim.set_command(home)
            sim.step(substeps)
            sim.state()
            steps += 1
    sim_s = steps / control_hz
    return {"case": "alone", "robot": robot, "steps": steps, "sim_s": sim_s, "wall_s": wall, "rtf": sim_s / wall}


def bench_ros(robot: str, seconds: float, physics_hz: float, control_hz: float, log_dir: Path) -> dict[str, object]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Float64MultiArray

    from sac_robot.nodes import ros_io as io

    home = load_robot(robot).array("home").tolist()
    config = robot if (REPO / "config" / f"{robot}.yaml").is_file() else "quadruped"
    params = {
        "config": config,
        "robot": robot,
        "lockstep": True,
        "physics_hz": physics_hz,
        "control_rate_hz": control_hz,
    }
    procs = ProcessGroup(os.environ.copy(), log_dir, cwd=REPO)  # SIGINT, SIGTERM, SIGKILL to its process group
    label = f"sim_rate_stand_in_{robot}"  # the log: LOG_DIR/sim_rate_stand_in_ROBOT.log
    procs.start(label, node_cmd("pybullet_stand_in", params, name="sim_rate_stand_in"))
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("sim_rate_commander", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stamps: list[float] = []
    names = load_robot(robot).joint_names
    pub = node.create_publisher(Float64MultiArray, io.JOINT_COMMANDS, io.COMMAND_QOS)
    command = Float64MultiArray(data=home)

    def on_joint_states(msg: io.JointState) -> None:
        stamp = io.from_time(msg.header.stamp)
        if list(msg.name) == names and len(msg.position) == len(names) and (not stamps or stamp > stamps[-1]):
            stamps.append(stamp)
            pub.publish(command)  # the next step, as soon as this one is complete

    node.create_subscription(io.JointState, io.JOINT_STATES, on_joint_states, io.COMMAND_QOS)

    def wait(done, timeout: float, what: str) -> None:
        spin_until(executor, done, timeout, what, check=procs.check_alive, details=procs.logs, spin_s=0.01)

    try:
        wait(lambda: pub.get_subscription_count() > 0 and node.count_publishers(io.JOINT_STATES) > 0, 60, "stand-in")
        for _ in range(20):  # our first command may go out before the stand-in's reader has matched us
            pub.publish(command)
            deadline = time.monotonic() + 1.0
            wait(lambda d=deadline: bool(stamps) or time.monotonic() > d, 5, "joint_states")
            if stamps:
                break
        wait(lambda: len(stamps) > control_hz, 30, "one simulated second of warm-up")
        first_step, first_stamp = len(stamps), stamps[-1]
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            executor.spin_once(timeout_sec=0.01)
            procs.check_alive()
        wall = time.perf_counter() - start
        steps, sim_s = len(stamps) - first_step, stamps[-1] - first_stamp
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        procs.close()
    return {"case": "ros_lockstep", "robot": robot, "steps": steps, "sim_s": sim_s, "wall_s": wall, "rtf": sim_s / wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured wall seconds per case")
    ap.add_argument("--robots", nargs="+", default=["quadruped"], help="robot descriptions (quadruped, biped)")
    ap.add_argument("--physics-hz", type=float, default=500.0)
    ap.add_argument("--control-hz", type=float, default=20.0)
    ap.add_argument("--cases", nargs="+", default=["alone", "ros_lockstep"], choices=["alone", "ros_lockstep"])
    ap.add_argument("--domain-id", type=int, default=201 + os.getpid() % 30, help="private ROS_DOMAIN_ID (not 100)")
    ap.add_argument("--log-dir", type=Path, default=Path("/tmp"), help="where the stand-in's log goes")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if args.domain_id == 100:
        ap.error("--domain-id 100 is reserved for the long-running benchmark")
    # Before rclpy is imported anywhere: discovery stays on this machine, on a domain of our own.
    private_ros_env(args.domain_id)

    results = []
    for robot in args.robots:
        if "alone" in args.cases:
            results.append(bench_alone(robot, args.seconds, args.physics_hz, args.control_hz))
        if "ros_lockstep" in args.cases:
            results.append(bench_ros(robot, args.seconds, args.physics_hz, args.control_hz, args.log_dir))
    load = os.getloadavg()
    print(
        f"PyBullet stand-in real-time factor ({args.physics_hz:g} Hz physics, {args.control_hz:g} Hz control, "
        f"load average {load[0]:.2f} on {os.cpu_count()} CPUs)"
    )
    print(f"{'case':<14}{'robot':<11}{'sim s':>9}{'wall s':>9}{'RTF':>8}{'steps/s':>10}")
    for r in results:
        print(
            f"{r['case']:<14}{r['robot']:<11}{r['sim_s']:>9.1f}{r['wall_s']:>9.1f}{r['rtf']:>8.2f}"
            f"{r['steps'] / r['wall_s']:>10.1f}"
        )
    if args.json:
        payload = {
            "physics_hz": args.physics_hz,
            "control_hz": args.control_hz,
            "seconds": args.seconds,
            "loadavg": list(load),
            "cpus": os.cpu_count(),
            "results": [{**r, "steps_per_s": r["steps"] / r["wall_s"]} for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
