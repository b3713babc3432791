# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""How often a one-shot e-stop from `ros2 topic pub --once` reaches a node, by --keep-alive.

A receiver process subscribes to /sac_robot/estop exactly as the collector and the policy node do
(nodes/safety_topics.subscribe_estop: three QoS profiles) and counts what arrives. For each keep-alive, N
publisher processes run one after another, each doing what `ros2 topic pub --once --keep-alive K` does
(test/estop_publisher.py --qos cli: wait for one matching subscription, publish once, sleep K s, exit);
a message counts as delivered when the receiver has it within 2 s. Writes JSON.

    python bench/estop_delivery.py [--trials 20] [--keep-alive 0.1 1.0] [--busy N] [--json FILE]

Every process runs with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST on a domain of its own and is stopped here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sac_robot.testing.rig import Reaper, private_ros_env

ROOT = Path(__file__).resolve().parents[1]
PUBLISHER = ROOT / "test" / "estop_publisher.py"
RECEIVER = """
import sys, time, rclpy
from sac_robot.nodes.safety_topics import QosWatch, subscribe_estop
rclpy.init()
node = rclpy.create_node("estop_receiver")
count = 0
def on_estop(pressed):
    global count
    count += 1
    print(f"got {count}", flush=True)
subscribe_estop(node, on_estop, QosWatch(node))
print("ready", flush=True)
try:
    rclpy.spin(node)
except KeyboardInterrupt:
    pass
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--keep-alive", type=float, nargs="+", default=[0.1, 1.0])
    ap.add_argument("--domain", "--domain-id", dest="domain", type=int, default=97, help="ROS_DOMAIN_ID")
    ap.add_argument(
        "--busy", type=int, default=0, help="CPU-bound processes running meanwhile (a loaded robot computer)"
    )
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    env = private_ros_env(args.domain)
    reaper = Reaper()  # each process in a session of its own, stopped as a group
    receiver = reaper.spawn([sys.executable, "-c", RECEIVER], env=env, stdout=subprocess.PIPE, text=True)
    received = 0

    def read_until(predicate, timeout_s: float) -> bool:
        nonlocal received
        os.set_blocking(receiver.stdout.fileno(), False)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = receiver.stdout.readline()
            if line.startswith("got"):
                received = int(line.split()[1])
            if predicate(line):
                return True
            if not line:
                time.sleep(0.01)
        return False

    burners = [reaper.spawn([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    results = []
    try:
        if not read_until(lambda line: line.startswith("ready"), 60.0):
            raise RuntimeError("the receiver did not start")
        time.sleep(1.0)
        for keep_alive in args.keep_alive:
            delivered = 0
            cmd = [sys.executable, str(PUBLISHER), "--qos", "cli", "--data", "true", "--keep-alive", str(keep_alive)]
            for _ in range(args.trials):
                before = received
                subprocess.run(cmd, env=env, capture_output=True, timeout=120, check=True)
                read_until(lambda line, before=before: received > before, 2.0)
                delivered += received > before
            results.append({"keep_alive_s": keep_alive, "trials": args.trials, "delivered": delivered})
            print(f"--keep-alive {keep_alive:g}: {delivered}/{args.trials} delivered", flush=True)
    finally:
        for burner in burners:
            reaper.kill(burner)
        reaper.stop_all(grace_s=10.0)  # the receiver: SIGINT, after 10 s SIGTERM, then SIGKILL
    out = {"command": "python bench/estop_delivery.py " + " ".join(sys.argv[1:]), "busy": args.busy, "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
