# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""An e-stop publisher in its own process, the way people's tools publish (ros2cli is not on PyPI).

    --qos cli          `ros2 topic pub --once --keep-alive K TOPIC std_msgs/msg/Bool "{data: X}"`, as ros2cli
                       (Jazzy, ros2topic/verb/pub.py) does it: its default profile (reliable, volatile, depth
                       10), wait for one matching subscription, publish once, sleep K s (default 0.1), exit
    --qos latched      a latched button: reliable, transient-local, depth 1; publishes once, stays until SIGINT
    --qos best_effort  a radio bridge or joystick node on sensor-data QoS: best effort, volatile, publishing
                       at --rate Hz until SIGINT (also the fail-safe heartbeat when --data false)

Prints "published" after its first message.
"""

from __future__ import annotations

import argparse
import sys
import time

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool

PROFILES = {
    "cli": QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE),
    "latched": QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL),
    "best_effort": QoSProfile(
        depth=10, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qos", choices=sorted(PROFILES), required=True)
    parser.add_argument("--data", choices=("true", "false"), required=True)
    parser.add_argument("--topic", default="/sac_robot/estop")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--keep-alive", type=float, default=0.1, help="cli: seconds alive after publishing")
    parser.add_argument("--match-timeout", type=float, default=60.0)
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node("estop_publisher")
    pub = node.create_publisher(Bool, args.topic, PROFILES[args.qos])
    msg = Bool(data=args.data == "true")
    try:
        if args.qos == "cli":
            deadline = time.monotonic() + args.match_timeout
            while pub.get_subscription_count() < 1:  # ros2 topic pub --once waits for one matching subscription
                if time.monotonic() > deadline:
                    print(f"no matching subscription on {args.topic}", flush=True)
                    return 1
                time.sleep(0.1)
            pub.publish(msg)
            print("published", flush=True)
            time.sleep(args.keep_alive)  # as ros2cli: DDS delivers (and repairs) from its own threads meanwhile
            return 0
        pub.publish(msg)
        print("published", flush=True)
        while True:  # until SIGINT
            if args.qos == "best_effort":
                time.sleep(1.0 / args.rate)
                pub.publish(msg)
            else:
                rclpy.spin_once(node, timeout_sec=0.1)
    except KeyboardInterrupt:
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
