# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Environment steps per second: the ROS lockstep path versus an in-process gymnasium loop.

Learning is disabled on both sides (random actions, no learner). The ROS side is the real
train_sim data path: Box2D stand-in process ↔ collector process over Fast DDS (joint commands out;
joint states, IMU, odometry, lidar, foot contacts and privileged signals in; /clock), with the
collector batching transitions to /sac_robot/transitions. This process plays the learner's part:
it counts the transitions that arrive and acknowledges them. The two sides alternate, several
rounds, and the ratio is taken per round. Run alone: the machine has 2 cores.

--floor adds a third side: the same stand-in answered by a trivial responder in this process (it
subscribes to the collector's six topics, replies to each step's privileged message with a zero
command, and calls reset at episode ends): what the stand-in and Fast DDS cost without our collector.

    python bench/ros_overhead.py [--rounds 3] [--seconds 15] [--floor] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sac_robot.testing.rig import Reaper, node_cmd, private_ros_env, write_config


def in_process(seconds: float) -> float:
    env = gym.make("BipedalWalker-v3")
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        steps += 1
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def _config(path: Path) -> None:
    write_config("bipedal_walker", path, {"sac.learning_starts": 10**9})  # never learn: random actions throughout


def _spawn(reaper: Reaper, module: str, params: dict[str, object]) -> subprocess.Popen:
    """A node process (its output discarded), in its own session: stopped as a group."""
    return reaper.spawn(node_cmd(module, params), stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def _rate(
    executor: Any, count: Callable[[], int], seconds: float, warmup: float, nudge: Callable[[], None] | None = None
) -> float:
    """Spin for ``warmup`` s (calling ``nudge`` after each spin), then: how fast ``count()`` rises, per second,
    over ``seconds``."""
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        executor.spin_once(timeout_sec=0.05)
        if nudge is not None:
            nudge()
    n0, t0 = count(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        executor.spin_once(timeout_sec=0.05)
    return (count() - n0) / (time.perf_counter() - t0)


def through_ros(seconds: float, config: Path, warmup: float = 5.0) -> float:
    import rclpy
    from std_msgs.msg import String, UInt8MultiArray

    from sac_robot.core.wire import decode_transitions, encode_ack
    from sac_robot.nodes import ros_io as io

    procs = Reaper()
    _spawn(procs, "box2d_stand_in", {"lockstep": True})
    _spawn(procs, "collector_node", {"config": config, "use_sim_time": True})
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("overhead_sink", context=ctx)
    count = {"n": 0}
    ack_pub = node.create_publisher(String, io.ACK, io.ACK_QOS)

    def on_batch(msg: UInt8MultiArray) -> None:
        b = decode_transitions(bytes(msg.data))
        count["n"] += b.count
        ack_pub.publish(String(data=encode_ack(b.collector_id, b.epoch, b.last_seq, 0, count["n"])))

    node.create_subscription(UInt8MultiArray, io.TRANSITIONS, on_batch, io.TRANSITIONS_QOS)
    executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    try:
        return _rate(executor, lambda: count["n"], seconds, warmup)
    finally:
        procs.stop_all(grace_s=10.0)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def floor(seconds: float, warmup: float = 5.0) -> float:
    """Steps/s of the stand-in with a responder that does nothing but answer (and reset)."""
    import rclpy
    from rclpy.experimental import EventsExecutor  # what the nodes spin with (nodes/spin.py)
    from std_msgs.msg import Float64MultiArray
    from std_srvs.srv import Trigger

    from sac_robot.nodes import cdr, cdr_writers
    from sac_robot.nodes import ros_io as io

    procs = Reaper()
    _spawn(procs, "box2d_stand_in", {"lockstep": True})
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("overhead_floor", context=ctx)
    qos = io.lockstep_qos(True)
    zero = cdr_writers.Float64MultiArrayWriter(4)([0.0] * 4)
    pub = node.create_publisher(Float64MultiArray, io.JOINT_COMMANDS, io.COMMAND_QOS)
    reset = node.create_client(Trigger, io.RESET)
    steps = {"n": 0}

    def on_step(data: bytes) -> None:
        steps["n"] += 1
        _, _, terminated, truncated = cdr.vector3_stamped(data)
        if terminated > 0.5 or truncated > 0.5:
            reset.call_async(Trigger.Request())
        else:
            pub.publish(zero)

    for msg_type, topic in [
        (io.JointState, io.JOINT_STATES),
        (io.Imu, io.IMU),
        (io.Odometry, io.ODOM),
        (io.LaserScan, io.SCAN),
        (io.JointState, io.FOOT_CONTACTS),
    ]:
        node.create_subscription(msg_type, topic, lambda data: None, qos, raw=True)
    node.create_subscription(io.Vector3Stamped, io.PRIVILEGED, on_step, qos, raw=True)
    executor = EventsExecutor(context=ctx)
    executor.add_node(node)

    def nudge() -> None:
        if steps["n"] == 0:
            pub.publish(zero)  # the stand-in's first state may have gone out before we subscribed

    try:
        return _rate(executor, lambda: steps["n"], seconds, warmup, nudge)
    finally:
        procs.stop_all(grace_s=10.0)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--floor", action="store_true", help="also measure the stand-in with a trivial responder")
    ap.add_argument("--json")
    ap.add_argument(
        "--domain-id",
        type=int,
        default=int(os.environ.get("ROS_DOMAIN_ID") or 150 + os.getpid() % 40),
        help="ROS_DOMAIN_ID (default: the environment's, else 150-189 from the pid)",
    )
    args = ap.parse_args()
    private_ros_env(args.domain_id)  # before rclpy starts: localhost discovery on a domain of our own
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "walker_random.yaml"
        _config(config)
        sides = ["in_process", "ros"] + (["ros_floor"] if args.floor else [])
        rates: dict[str, list[float]] = {side: [] for side in sides}
        measure = {
            "in_process": lambda: in_process(args.seconds),
            "ros": lambda: through_ros(args.seconds, config),
            "ros_floor": lambda: floor(args.seconds),
        }
        for r in range(args.rounds):
            for side in sides if r % 2 == 0 else sides[::-1]:
                rate = measure[side]()
                rates[side].append(rate)
                print(f"round {r}: {side:10s} {rate:8.0f} steps/s", flush=True)
    ratios = [a / b for a, b in zip(rates["ros"], rates["in_process"])]
    summary = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"median: in-process {summary['in_process']:.0f} steps/s, ROS {summary['ros']:.0f} steps/s, "
        f"ROS/in-process {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"
        + (f", stand-in with a trivial responder {summary['ros_floor']:.0f} steps/s" if args.floor else "")
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"rates": rates, "ratios": ratios, "median": summary}, indent=2))


if __name__ == "__main__":
    main()
